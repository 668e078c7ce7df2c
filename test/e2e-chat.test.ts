/** Wire-level checks of /v1/chat/completions against the simulator (CONTRACT §6.7 N1, S1–S9). */
import t from 'tap'
import { defaultAnswer, defaultReasoning } from '../src/simulator/index.js'
import { harness as baseHarness, postJson, sseData } from './helpers/setup.js'

const USER = 'Tell me about Hangzhou'
const body = (extra: Record<string, unknown> = {}) => ({ model: 'qwen3-max', messages: [{ role: 'user', content: USER }], ...extra })

interface Chunk {
  id: string
  object: string
  created: number
  model: string
  choices: Array<{ index: number; delta: Record<string, unknown>; finish_reason: string | null }>
  usage?: null | { prompt_tokens: number; completion_tokens: number; total_tokens: number; completion_tokens_details: { reasoning_tokens: number } }
}

async function streamChunks (url: string, b: unknown, headers: Record<string, string> = {}) {
  const res = await postJson(`${url}/v1/chat/completions`, b, headers)
  const raw = await res.text()
  const data = sseData(raw)
  const done = data[data.length - 1]
  const chunks = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d) as Chunk)
  return { res, raw, data, done, chunks }
}
// The end-to-end chat tests run against both sites' rules (the simulator's SIM_SITE).
for (const site of ['2026', '2025'] as const) {
  const harness: typeof baseHarness = (tt, o = {}) => baseHarness(tt, { ...o, sim: { ...o.sim, site } })

  t.test(`site ${site}`, async (t) => {
    t.test('N1: non-stream response shape', async (t) => {
      const h = await harness(t)
      const res = await postJson(`${h.url}/v1/chat/completions`, body())
      t.equal(res.status, 200)
      t.match(res.headers.get('content-type'), /^application\/json/)
      t.match(res.headers.get('x-request-id'), /^req_/)
      const j = await res.json() as Record<string, any>
      t.match(j.id, /^chatcmpl-/)
      t.equal(j.object, 'chat.completion')
      t.ok(Math.abs(j.created - Date.now() / 1000) < 300)
      t.equal(j.model, 'qwen3-max')
      t.equal(j.choices.length, 1)
      t.equal(j.choices[0].index, 0)
      t.equal(j.choices[0].message.role, 'assistant')
      t.equal(j.choices[0].message.content, defaultAnswer(USER))
      t.equal(j.choices[0].message.refusal, null)
      t.notOk('reasoning_content' in j.choices[0].message, 'no reasoning without thinking')
      t.ok('logprobs' in j.choices[0])
      t.equal(j.choices[0].logprobs, null)
      t.equal(j.choices[0].finish_reason, 'stop')
      const u = j.usage
      t.ok(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0)
      t.ok(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0)
      t.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens)
      t.equal(u.completion_tokens_details.reasoning_tokens, 0)
    })

    t.test('the upstream receives exactly one message per request, in a fresh chat, with phase output', async (t) => {
      const h = await harness(t)
      await postJson(`${h.url}/v1/chat/completions`, body({ messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: USER }] }))
      const log = h.sim.log()
      const created = log.filter((e) => e.path === '/api/v2/chats/new')
      const completions = log.filter((e) => e.path === '/api/v2/chat/completions')
      t.equal(created.length, 1)
      t.equal(completions.length, 1)
      const sent = completions[0]!.body as Record<string, any>
      t.equal(sent.messages.length, 1)
      t.equal(sent.messages[0].content, `Be brief.\n\n${USER}`)
      t.equal(sent.messages[0].feature_config.output_schema, 'phase')
      t.equal(sent.messages[0].feature_config.thinking_enabled, false)
      t.equal(sent.model, 'qwen3-max')
      t.equal(sent.stream, true)
      t.equal(completions[0]!.query.chat_id, sent.chat_id)
      t.match(completions[0]!.headers.authorization, /^Bearer /)
      t.equal(completions[0]!.headers['accept-encoding'], 'identity')
    })

    t.test('S1–S5: stream headers, framing, role, one finish_reason, usage only when asked', async (t) => {
      const h = await harness(t)
      const { res, raw, done, chunks } = await streamChunks(h.url, body({ stream: true }))
      t.equal(res.status, 200)
      t.match(res.headers.get('content-type'), /^text\/event-stream/)
      t.equal(res.headers.get('cache-control'), 'no-cache')
      t.equal(res.headers.get('x-accel-buffering'), 'no')
      t.match(res.headers.get('x-request-id'), /^req_/)
      t.ok(raw.endsWith('data: [DONE]\n\n'), '[DONE] is the last event')
      t.equal(done, '[DONE]')
      t.same(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '', refusal: null })
      t.equal(chunks.filter((c) => c.choices[0]?.delta.role !== undefined).length, 1, 'role only in the first chunk')
      const ids = new Set(chunks.map((c) => `${c.id}|${c.created}|${c.model}|${c.object}`))
      t.equal(ids.size, 1, 'same id/created/model on every chunk')
      t.equal([...ids][0]!.split('|')[3], 'chat.completion.chunk')
      t.ok(chunks.every((c) => Array.isArray(c.choices)))
      const finishes = chunks.filter((c) => c.choices[0]?.finish_reason)
      t.equal(finishes.length, 1)
      t.same(finishes[0]!.choices[0]!.delta, {}, 'the finishing chunk carries no content')
      t.equal(finishes[0], chunks[chunks.length - 1], 'nothing after the finish chunk without include_usage')
      const contents = chunks.slice(1).map((c) => c.choices[0]?.delta.content).filter((c) => c !== undefined)
      t.ok(contents.every((c) => typeof c === 'string' && c.length > 0), 'content deltas are non-empty')
      t.equal(contents.join(''), defaultAnswer(USER))
      t.ok(chunks.every((c) => !('usage' in c)), 'no usage key without include_usage')

      const withUsage = await streamChunks(h.url, body({ stream: true, stream_options: { include_usage: true } }))
      const last = withUsage.chunks[withUsage.chunks.length - 1]!
      t.same(last.choices, [])
      t.ok(last.usage && last.usage.total_tokens === last.usage.prompt_tokens + last.usage.completion_tokens)
      t.ok(withUsage.chunks.slice(0, -1).every((c) => c.usage === null), 'usage is null on every other chunk')
    })

    t.test('S6: stream and non-stream agree', async (t) => {
      const h = await harness(t)
      const s = await streamChunks(h.url, body({ model: 'qwen3-max-thinking', stream: true }))
      const streamed = s.chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')
      const reasoned = s.chunks.map((c) => c.choices[0]?.delta.reasoning_content ?? '').join('')
      const n = await (await postJson(`${h.url}/v1/chat/completions`, body({ model: 'qwen3-max-thinking' }))).json() as any
      t.equal(streamed, n.choices[0].message.content)
      t.equal(reasoned, n.choices[0].message.reasoning_content)
    })

    t.test('S8: reasoning comes before content and matches the upstream thinking', async (t) => {
      const h = await harness(t)
      for (const model of ['qwen3-max-thinking', 'qwen3.5-plus-thinking']) {
        const { chunks } = await streamChunks(h.url, body({ model, stream: true, stream_options: { include_usage: true } }))
        const kinds = chunks.flatMap((c) => Object.keys(c.choices[0]?.delta ?? {}).filter((k) => k === 'content' || k === 'reasoning_content'))
        const firstContent = kinds.indexOf('content', 1)
        t.ok(kinds.lastIndexOf('reasoning_content') < firstContent, `${model}: all reasoning before content`)
        const reasoning = chunks.map((c) => c.choices[0]?.delta.reasoning_content ?? '').join('')
        if (model.startsWith('qwen3-max')) t.equal(reasoning, defaultReasoning(USER))
        else t.ok(reasoning.length > 0, `${model}: thinking_summary becomes reasoning_content`)
        t.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), defaultAnswer(USER))
        t.ok(chunks[chunks.length - 1]!.usage!.completion_tokens_details.reasoning_tokens > 0)
      }
      const sent = h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').map((e) => (e.body as any).messages[0].feature_config.thinking_enabled)
      t.same(sent, [true, true])
    })

    t.test('reasoning_effort turns thinking on or off', async (t) => {
      const h = await harness(t)
      await postJson(`${h.url}/v1/chat/completions`, body({ reasoning_effort: 'high' }))
      const off = await (await postJson(`${h.url}/v1/chat/completions`, body({ model: 'qwen3-max-thinking', reasoning_effort: 'none' }))).json() as any
      t.notOk(off.choices[0].message.reasoning_content)
      const sent = h.sim.log().filter((e) => e.path === '/api/v2/chat/completions').map((e) => (e.body as any).messages[0].feature_config.thinking_enabled)
      t.same(sent, [true, false])
    })

    t.test('THINKING_OUTPUT think_tags and hidden', async (t) => {
      const tags = await harness(t, { gateway: { thinkingOutput: 'think_tags' } })
      const a = await (await postJson(`${tags.url}/v1/chat/completions`, body({ model: 'qwen3-max-thinking' }))).json() as any
      t.equal(a.choices[0].message.content, `<think>\n${defaultReasoning(USER)}\n</think>\n\n${defaultAnswer(USER)}`)
      const hidden = await harness(t, { gateway: { thinkingOutput: 'hidden' } })
      const b = await (await postJson(`${hidden.url}/v1/chat/completions`, body({ model: 'qwen3-max-thinking' }))).json() as any
      t.equal(b.choices[0].message.content, defaultAnswer(USER))
      t.notOk(b.choices[0].message.reasoning_content)
    })

    t.test('-search sets chat_type search; search results never reach content', async (t) => {
      const h = await harness(t)
      const j = await (await postJson(`${h.url}/v1/chat/completions`, body({ model: 'qwen3-max-search' }))).json() as any
      t.equal(j.model, 'qwen3-max-search')
      t.notMatch(j.choices[0].message.content, /https?:\/\//, 'no search result URLs in the answer')
      const c = h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as any
      t.equal(c.messages[0].chat_type, 'search')
      const chat = h.sim.log().find((e) => e.path === '/api/v2/chats/new')!.body as any
      t.equal(chat.chat_type, 'search')
    })

    t.test('stop and max_tokens are honoured, stream and non-stream alike', async (t) => {
      const h = await harness(t)
      const answer = defaultAnswer(USER)
      const stopAt = answer.slice(20, 26)
      const cut = answer.slice(0, answer.indexOf(stopAt))
      const n = await (await postJson(`${h.url}/v1/chat/completions`, body({ stop: [stopAt] }))).json() as any
      t.equal(n.choices[0].message.content, cut)
      t.equal(n.choices[0].finish_reason, 'stop')
      const s = await streamChunks(h.url, body({ stream: true, stop: stopAt }))
      t.equal(s.chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), cut)
      const m = await (await postJson(`${h.url}/v1/chat/completions`, body({ max_tokens: 5 }))).json() as any
      t.equal(m.choices[0].finish_reason, 'length')
      t.ok(m.choices[0].message.content.length > 0 && answer.startsWith(m.choices[0].message.content))
      t.ok(m.usage.completion_tokens <= 5)
      const ms = await streamChunks(h.url, body({ stream: true, max_completion_tokens: 5 }))
      t.equal(ms.chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason, 'length')
      t.equal(ms.chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), m.choices[0].message.content)
    })

    t.test('R1: request tolerance', async (t) => {
      const h = await harness(t)
      const res = await postJson(`${h.url}/v1/chat/completions`, {
        model: 'qwen3-max',
        messages: [
          { role: 'developer', content: [{ type: 'text', text: 'Be nice.' }] },
          { role: 'user', content: 'What is the weather?' },
          { role: 'assistant', content: null, reasoning_content: 'hmm', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: '{"temp":20}' },
          { role: 'user', content: [{ type: 'text', text: 'Thanks' }] },
        ],
        store: false, metadata: { a: 'b' }, stream_options: { include_usage: true }, parallel_tool_calls: false, max_completion_tokens: 1000,
        reasoning_effort: 'low', verbosity: 'low', prompt_cache_key: 'k', foo_bar: 1, temperature: 0.3, top_p: 0.9, seed: 1, user: 'u', tool_choice: 'none', n: 1,
      })
      t.equal(res.status, 200)
      const sent = (h.sim.log().find((e) => e.path === '/api/v2/chat/completions')!.body as any).messages[0].content as string
      t.match(sent, /^\[System\]\nBe nice\.\n\n\[User\]\nWhat is the weather\?/)
      t.match(sent, /\[TOOL CALL\]\n\{"name":"get_weather","arguments":\{"city":"Paris"\}\}\n\[END TOOL CALL\]/)
      t.match(sent, /\[TOOL RESULT get_weather call_1\]\n\{"temp":20\}\n\[END TOOL RESULT\]/)
      t.notMatch(sent, /# Tools/, 'tool_choice "none" sends no tool block')
    })

    t.test('S9: an upstream error after commit is an error frame, then [DONE], no finish_reason', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      h.sim.queue(h.sim.accounts[0]!.email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
      const { res, data, chunks } = await streamChunks(h.url, body({ stream: true }))
      t.equal(res.status, 200)
      t.equal(data[data.length - 1], '[DONE]')
      const err = JSON.parse(data[data.length - 2]!)
      t.equal(err.error.type, 'server_error')
      t.equal(err.error.code, 'upstream_error')
      t.match(err.error.message, /Internal error/)
      t.notOk(chunks.some((c) => c.choices?.[0]?.finish_reason), 'no finish_reason after an error')
    })

    t.test('S9: text that arrived before an error frame in the same network chunk still reaches the client', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      h.sim.queue(h.sim.accounts[0]!.email, { errorAfterFrames: 10, pauseAfterFrames: 2 })
      const { data, chunks } = await streamChunks(h.url, body({ stream: true }))
      t.same(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '', refusal: null })
      const text = chunks.map((c) => c.choices?.[0]?.delta.content ?? '').join('')
      t.ok(text.length > 20 && defaultAnswer(USER).startsWith(text), `partial answer kept: ${JSON.stringify(text)}`)
      t.equal(JSON.parse(data[data.length - 2]!).error.code, 'upstream_error')
    })

    t.test('a socket drop mid-stream is an error frame; before commit it is a 502', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      const email = h.sim.accounts[0]!.email
      h.sim.queue(email, { dropAfterFrames: 4 })
      const { data } = await streamChunks(h.url, body({ stream: true }))
      t.equal(data[data.length - 1], '[DONE]')
      t.equal(JSON.parse(data[data.length - 2]!).error.code, 'upstream_error')
      h.sim.queue(email, { dropAfterFrames: 0 })
      const r = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }))
      t.equal(r.status, 502)
      t.equal((await r.json() as any).error.code, 'upstream_error')
    })

    t.test('a stream that ends cleanly without the finished frame is an error, never an empty success', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      const email = h.sim.accounts[0]!.email
      const cut = { status: 200, contentType: 'text/event-stream', body: 'data: {"response.created":{"chat_id":"c","parent_id":"p","response_id":"r"}}\n\ndata: {"choices":[{"delta":{"content":"Hal","phase":"answer","status":"typing"}}],"response_id":"r"}\n\n' }
      h.sim.queue(email, { fail: cut })
      const n = await postJson(`${h.url}/v1/chat/completions`, body())
      t.equal(n.status, 502)
      t.match((await n.json() as any).error.message, /before the answer was finished/)
      h.sim.queue(email, { fail: cut })
      const { data, chunks } = await streamChunks(h.url, body({ stream: true }))
      t.equal(chunks.map((c) => c.choices?.[0]?.delta.content ?? '').join(''), 'Hal')
      t.equal(JSON.parse(data[data.length - 2]!).error.code, 'upstream_error')
      t.notOk(chunks.some((c) => c.choices?.[0]?.finish_reason))
    })

    t.test('multi-byte characters split across TCP chunks arrive intact', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      h.sim.queue(h.sim.accounts[0]!.email, { splitBytes: 1 }, { splitBytes: 3 })
      const s = await streamChunks(h.url, body({ stream: true }))
      t.equal(s.chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), defaultAnswer(USER))
      const n = await (await postJson(`${h.url}/v1/chat/completions`, body())).json() as any
      t.equal(n.choices[0].message.content, defaultAnswer(USER))
    })

    t.test('frames of an interleaved second answer are ignored', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      h.sim.queue(h.sim.accounts[0]!.email, { interleave: true })
      const n = await (await postJson(`${h.url}/v1/chat/completions`, body())).json() as any
      t.equal(n.choices[0].message.content, defaultAnswer(USER))
    })

    t.test('streams that end with a literal [DONE] upstream are handled', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1, emitDone: true } })
      const s = await streamChunks(h.url, body({ stream: true }))
      t.equal(s.chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), defaultAnswer(USER))
      t.equal(s.data.filter((d) => d === '[DONE]').length, 1, 'exactly one [DONE] reaches the client')
    })

    t.test('SSE is chosen by stream:true, not by Accept', async (t) => {
      const h = await harness(t)
      const s = await postJson(`${h.url}/v1/chat/completions`, body({ stream: true }), { accept: 'application/json' })
      t.match(s.headers.get('content-type'), /text\/event-stream/)
      await s.text()
      const n = await postJson(`${h.url}/v1/chat/completions`, body(), { accept: 'text/event-stream' })
      t.match(n.headers.get('content-type'), /application\/json/)
      await n.text()
    })
  })
}
