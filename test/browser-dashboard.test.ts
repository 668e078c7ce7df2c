/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core): login, one row
 * per identity with its state, a live state change, adding an account that then serves, disabling
 * one and seeing traffic avoid it, a streamed playground answer, no console error, no failed
 * request, and a screenshot checked for sanity (written to $DASHBOARD_SCREENSHOT when set: the README's docs/dashboard.png).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import t from 'tap'
import { PNG } from 'pngjs'
import { defaultAnswer } from '../src/simulator/index.js'
import { findBinary, skipWithout } from './helpers/system.js'
import { harness, postJson, startSim } from './helpers/setup.js'

const KEY = 'sk-dashboard-admin-key-1234'

t.test('the dashboard in chromium', { skip: skipWithout('chromium', 'chromium') }, async (t) => {
  const { chromium } = await import('playwright-core')
  const sim = await startSim(t, { demoAccounts: 3 })
  const h = await harness(t, { simulator: sim, gateway: { cookies: sim.accounts.slice(0, 2).map((a) => a.cookie), apiKey: KEY, replicaId: 'replica-a' } })
  const [a, b] = h.app.qwenPool.identities

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? findBinary('chromium', ['/usr/bin/chromium']) ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps', '--disable-extensions', '--mute-audio'],
  })
  // Closed before the app (registered after it: teardowns run last-in first-out).
  t.teardown(() => browser.close())
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, reducedMotion: 'reduce', locale: 'en-US', timezoneId: 'UTC' })
  const page = await ctx.newPage()
  const consoleErrors: string[] = []
  const failed: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })
  page.on('pageerror', (e) => consoleErrors.push(e.message))
  page.on('response', (r) => { if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`) })
  page.on('requestfailed', (r) => { if (!r.url().includes('/admin/api/events')) failed.push(`failed ${new URL(r.url()).pathname}`) })

  await page.goto(`${h.url}/admin/`)
  // A wrong key first: the login says so.
  await page.getByTestId('login-key').fill('not-the-key')
  await page.getByTestId('login-submit').click()
  await page.getByRole('alert').filter({ hasText: 'Wrong admin key' }).waitFor()
  t.same(failed, ['401 /admin/api/state'], 'the wrong key is the only refused request')
  failed.length = 0
  consoleErrors.length = 0 // Chromium logs the deliberate 401 as a resource error.

  await page.getByTestId('login-key').fill(KEY)
  await page.getByTestId('login-submit').click()
  const rows = page.getByTestId('identity-row')
  await rows.first().waitFor()
  t.equal(await rows.count(), 2, 'one row per identity')
  await page.getByText('● live').waitFor()
  const states = async () => page.$$eval('[data-testid=identity-row]', (els) => els.map((e) => [e.getAttribute('data-identity-id'), e.getAttribute('data-state')]))
  t.same(await states(), [[a!.id, 'healthy'], [b!.id, 'healthy']])
  t.match(await page.getByTestId('pool-counts').textContent(), /healthy 2/)
  t.match(await page.locator('header').textContent(), /replica-a/)
  t.notOk(await page.getByText('loading…').count(), 'the placeholder is gone')
  const health = await (await fetch(`${h.url}/health`, { headers: { authorization: `Bearer ${KEY}` } })).json() as any
  t.same(health.identities.map((i: any) => [i.id, i.status]), await states(), 'data-state matches /health status')

  // The simulator rate-limits account b: its row turns to cooldown without a reload.
  sim.queue(sim.accounts[1]!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  for (let k = 0; k < 2; k++) await (await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` })).text()
  const changedAt = Date.now()
  await page.locator(`[data-testid=identity-row][data-identity-id="${b!.id}"][data-state=cooldown]`).waitFor({ timeout: 2000 })
  t.ok(Date.now() - changedAt < 2000, 'the state change arrived live within 2 s')
  await page.getByTestId('requests-row').nth(1).waitFor()
  t.ok(await page.getByTestId('requests-row').count() >= 2, 'the requests show up live')
  const cd1 = await page.locator(`[data-identity-id="${b!.id}"] [data-testid=cooldown]`).textContent()
  t.match(cd1, /min|h/, 'a cooldown countdown')
  await page.locator(`[data-identity-id="${b!.id}"] [data-testid=identity-reset]`).click()
  await page.locator(`[data-identity-id="${b!.id}"][data-state=healthy]`).waitFor()

  // Add the third simulator account; disable the two configured ones: the new one serves.
  const third = sim.accounts[2]!
  await page.getByTestId('account-add-input').fill(`${third.email}:${third.password}`)
  await page.getByTestId('account-add-submit').click()
  await rows.nth(2).waitFor()
  const added = await rows.nth(2).getAttribute('data-identity-id')
  t.ok(added && h.app.qwenPool.get(added), 'the new account is in the pool')
  await page.locator(`[data-identity-id="${added}"][data-state=healthy]`).waitFor()
  t.notOk((await page.content()).includes(third.password), 'the password never reaches the page')
  t.notOk((await page.content()).includes(third.email), 'nor the full e-mail')
  for (const id of [a!.id, b!.id]) {
    await page.locator(`[data-identity-id="${id}"] [data-testid=identity-disable]`).click()
    await page.locator(`[data-identity-id="${id}"][data-state=disabled]`).waitFor()
  }
  const before = await page.getByTestId('requests-row').count()
  for (let k = 0; k < 3; k++) {
    const r = await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` })
    t.equal(r.status, 200)
    await r.text()
  }
  await page.getByTestId('requests-row').nth(before + 2).waitFor()
  const recent = await (await fetch(`${h.url}/admin/api/requests?limit=3`, { headers: { authorization: `Bearer ${KEY}` } })).json() as any
  t.same(recent.requests.map((r: any) => r.identity), [added, added, added], 'traffic avoids the disabled accounts and the added one serves')
  await page.locator(`[data-identity-id="${a!.id}"] [data-testid=identity-disable]`).click()
  await page.locator(`[data-identity-id="${a!.id}"][data-state=healthy]`).waitFor()
  await page.locator(`[data-identity-id="${a!.id}"] [data-testid=identity-refresh]`).click()
  await page.getByText('Token refreshed').waitFor()

  // URL filters survive a reload.
  await page.getByTestId('filter-status').selectOption('ok')
  t.match(page.url(), /status=ok/)
  await page.reload()
  await rows.first().waitFor()
  t.equal(await page.getByTestId('filter-status').inputValue(), 'ok', 'filters are kept in the URL')
  await page.getByTestId('filter-status').selectOption('')

  // Remove the runtime account.
  await page.locator(`[data-identity-id="${added}"] [data-testid=account-remove]`).click()
  await page.locator(`[data-identity-id="${added}"]`).waitFor({ state: 'detached' })
  t.notOk(h.app.qwenPool.get(added!), 'removed from the pool')

  // A streamed playground answer.
  await page.locator('[data-testid=playground-model] option').first().waitFor({ state: 'attached' })
  await page.getByTestId('playground-model').selectOption('qwen3-max')
  await page.getByTestId('playground-input').fill('hello there')
  await page.getByTestId('playground-send').click()
  await page.getByTestId('playground-output').filter({ hasText: defaultAnswer('hello there') }).waitFor()
  t.match(await page.getByTestId('playground-meta').textContent(), /TTFT \d+ ms/)

  // For the screenshot: account b back on, then rate limited again (a cooldown badge and an error kind).
  await page.locator(`[data-identity-id="${b!.id}"] [data-testid=identity-disable]`).click()
  await page.locator(`[data-identity-id="${b!.id}"][data-state=healthy]`).waitFor()
  sim.queue(sim.accounts[1]!.email, { fail: 'rate_limited', rateLimitHours: 2 })
  sim.queue(sim.accounts[0]!.email, { fail: 'rate_limited', rateLimitHours: 1 })
  for (let k = 0; k < 2; k++) await (await postJson(`${h.url}/v1/chat/completions`, { model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` })).text()
  await page.locator(`[data-identity-id="${b!.id}"][data-state=cooldown]`).waitFor()
  await page.locator(`[data-identity-id="${a!.id}"] [data-testid=identity-reset]`).click()
  await page.locator(`[data-identity-id="${a!.id}"][data-state=healthy]`).waitFor()
  // The 429 is a response the test caused through the API, not one the page made.

  // No secret anywhere in the page (the connect snippets use a placeholder).
  const content = await page.content()
  for (const s of [KEY, ...sim.accounts.map((x) => x.cookie), ...sim.accounts.map((x) => x.password)]) t.notOk(content.includes(s), 'no secret in the page')
  t.match(content, /YOUR_API_KEY/)

  // Screenshot sanity: size, not blank, the down/cooldown badges styled.
  await page.mouse.wheel(0, -10_000)
  const shot = await page.screenshot({ fullPage: true, animations: 'disabled' })
  const png = PNG.sync.read(shot)
  t.equal(png.width, 1280)
  t.ok(png.height >= 600, `height ${png.height}`)
  const colours = new Set<number>()
  for (let y = 0; y < png.height; y += 7) {
    for (let x = 0; x < png.width; x += 7) {
      const o = (y * png.width + x) * 4
      colours.add((png.data[o]! << 16) | (png.data[o + 1]! << 8) | png.data[o + 2]!)
    }
  }
  t.ok(colours.size > 20, `${colours.size} distinct colours: not blank`)
  const badge = PNG.sync.read(await page.locator(`[data-identity-id="${a!.id}"] [data-testid=state]`).screenshot())
  let green = 0
  for (let k = 0; k < badge.data.length; k += 4) if (badge.data[k + 1]! > badge.data[k]! + 40 && badge.data[k + 1]! > badge.data[k + 2]! + 20) green++
  t.ok(green > 10, 'the healthy badge is green: the stylesheet loaded')
  // The README's image: refreshed with DASHBOARD_SCREENSHOT=docs/dashboard.png (a plain run leaves the tree clean).
  const out = process.env.DASHBOARD_SCREENSHOT
  if (out) {
    await mkdir(dirname(out), { recursive: true })
    await writeFile(out, shot)
  }

  t.same(consoleErrors, [], 'no console error')
  t.same(failed, [], 'no failed request during normal use')
})
