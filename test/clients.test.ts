/**
 * Real client libraries against the gateway (CONTRACT §6.2–§6.4, §6.7 item 4): the pinned `openai`,
 * `ai` + `@ai-sdk/openai-compatible` and `@langchain/openai` packages talk to a gateway that talks to
 * the upstream simulator, both over real sockets. Only third-party code is on the assertion path:
 * every expected text comes from the simulator's deterministic `defaultAnswer`/`defaultReasoning`.
 */
import t from 'tap'
import OpenAI, { APIError, AuthenticationError, BadRequestError, InternalServerError, NotFoundError, RateLimitError } from 'openai'
import { generateText, streamText } from 'ai'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { ChatOpenAI } from '@langchain/openai'
import type { AIMessageChunk } from '@langchain/core/messages'
import { defaultAnswer, defaultReasoning, type Simulator } from '../src/simulator/index.js'
import { harness as baseHarness, type Harness } from './helpers/setup.js'

const TIMEOUT_MS = 20_000
const COMPLETIONS_PATH = '/api/v2/chat/completions'

type Usage = { prompt_tokens: number; completion_tokens: number; total_tokens: number; completion_tokens_details?: { reasoning_tokens?: number } }

/** Upstream completion attempts recorded by the simulator. */
function upstreamCompletions (sim: Simulator): number {
  return sim.log().filter((e) => e.path === COMPLETIONS_PATH).length
}

/** An `openai` client for the gateway that also counts the HTTP requests it makes. */
function openaiClient (h: Harness, o: { apiKey?: string; maxRetries?: number } = {}): { client: OpenAI; requests: () => number } {
  let n = 0
  const client = new OpenAI({
    baseURL: `${h.url}/v1`,
    apiKey: o.apiKey ?? 'x',
    maxRetries: o.maxRetries ?? 0,
    timeout: TIMEOUT_MS,
    fetch: async (input, init) => { n++; return fetch(input, init) },
  })
  return { client, requests: () => n }
}

/** The assertions `checkUsage` needs (tap's plugin-built test type is not exported). */
type Asserts = Pick<typeof t, 'ok' | 'equal'>

function checkUsage (t: Asserts, u: Usage | null | undefined, reasoning = false): void {
  t.ok(u, 'usage present')
  if (!u) return
  t.ok(Number.isInteger(u.prompt_tokens) && u.prompt_tokens > 0, `prompt_tokens ${u.prompt_tokens} > 0`)
  t.ok(Number.isInteger(u.completion_tokens) && u.completion_tokens > 0, `completion_tokens ${u.completion_tokens} > 0`)
  t.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens, 'total = prompt + completion')
  const r = u.completion_tokens_details?.reasoning_tokens
  if (reasoning) {
    t.ok(typeof r === 'number' && r > 0 && r < u.completion_tokens, `reasoning_tokens ${r} in (0, completion)`)
  } else {
    t.equal(r ?? 0, 0, 'no reasoning tokens without thinking')
  }
}
// The client-library tests run against both sites' rules (the simulator's SIM_SITE).
for (const site of ['2026', '2025'] as const) {
  const harness: typeof baseHarness = (tt, o = {}) => baseHarness(tt, { ...o, sim: { ...o.sim, site } })

  t.test(`site ${site}`, async (t) => {
    t.test('openai: non-stream create', async (t) => {
      const h = await harness(t)
      const { client, requests } = openaiClient(h)
      const prompt = 'Hello from the openai SDK'
      const r = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: prompt }] })
      t.equal(typeof r, 'object', 'parsed as an object (application/json)')
      t.equal(r.object, 'chat.completion')
      t.match(r.id, /^chatcmpl-/)
      t.equal(r.model, 'qwen3-max', 'requested model echoed')
      t.equal(r.choices.length, 1)
      t.equal(r.choices[0]!.message.role, 'assistant')
      t.equal(r.choices[0]!.message.content, defaultAnswer(prompt))
      t.equal(r.choices[0]!.finish_reason, 'stop')
      t.equal((r.choices[0]!.message as unknown as Record<string, unknown>).reasoning_content, undefined, 'no reasoning without -thinking')
      checkUsage(t, r.usage)
      t.ok(typeof r._request_id === 'string' && r._request_id.length > 0, `_request_id ${r._request_id}`)
      t.equal(requests(), 1)
      t.equal(upstreamCompletions(h.sim), 1)

      // a system message is folded in front of the user text, separated by a blank line
      const sys = await client.chat.completions.create({
        model: 'qwen3-max',
        messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: prompt }],
      })
      t.equal(sys.choices[0]!.message.content, defaultAnswer(`Be terse.\n\n${prompt}`))

      // the response headers, through the SDK
      const { data, response, request_id: requestId } = await client.chat.completions
        .create({ model: 'qwen3-max', messages: [{ role: 'user', content: prompt }] }, { headers: { 'x-request-id': 'client-chosen-id.1' } })
        .withResponse()
      t.match(response.headers.get('content-type'), /^application\/json/)
      t.equal(response.headers.get('x-request-id'), 'client-chosen-id.1', 'a caller-chosen request id is echoed')
      t.equal(requestId, 'client-chosen-id.1')
      t.equal(data.choices[0]!.message.content, defaultAnswer(prompt))
    })

    t.test('openai: raw stream with include_usage matches the non-stream answer', async (t) => {
      const h = await harness(t)
      const { client } = openaiClient(h)
      const prompt = 'Stream me a reply, please'
      const model = 'qwen3-max'
      const whole = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }] })

      const stream = await client.chat.completions.create({
        model, messages: [{ role: 'user', content: prompt }], stream: true, stream_options: { include_usage: true },
      })
      const chunks: OpenAI.ChatCompletionChunk[] = []
      for await (const c of stream) chunks.push(c)
      t.ok(chunks.length >= 4, `${chunks.length} chunks`)
      const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')
      t.equal(text, defaultAnswer(prompt), 'concatenated deltas = the simulator answer')
      t.equal(text, whole.choices[0]!.message.content, 'stream/non-stream parity')
      t.equal(chunks[0]!.choices[0]!.delta.role, 'assistant', 'first chunk carries the role')
      t.equal(chunks.filter((c) => c.choices[0]?.delta?.role !== undefined).length, 1, 'role only once')
      t.same(chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f !== null), ['stop'], 'exactly one finish_reason')
      t.ok(chunks.every((c) => c.model === model && c.id === chunks[0]!.id && Array.isArray(c.choices)), 'same id and echoed model on every chunk')
      t.ok(chunks.every((c) => (c.choices[0]?.delta as Record<string, unknown> | undefined)?.reasoning_content === undefined), 'no reasoning deltas')

      const last = chunks.at(-1)!
      t.same(last.choices, [], 'last chunk has choices: []')
      checkUsage(t, last.usage)
      t.same(last.usage, whole.usage, 'same usage as the non-stream response')
      t.ok(chunks.slice(0, -1).every((c) => c.usage === null), 'usage: null on the other chunks')
    })

    t.test('openai: raw stream without include_usage carries no usage', async (t) => {
      const h = await harness(t)
      const { client } = openaiClient(h)
      const prompt = 'No usage this time'
      const stream = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: prompt }], stream: true })
      const chunks: OpenAI.ChatCompletionChunk[] = []
      for await (const c of stream) chunks.push(c)
      t.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), defaultAnswer(prompt))
      t.ok(chunks.every((c) => c.choices.length === 1 && c.usage == null), 'no usage chunk')
      t.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'stop')
    })

    t.test('openai: .stream() helper accumulates a complete message', async (t) => {
      const h = await harness(t)
      const { client } = openaiClient(h)
      const prompt = 'Accumulate this with the helper'
      const runner = client.chat.completions.stream({
        model: 'qwen3-max', messages: [{ role: 'user', content: prompt }], stream_options: { include_usage: true },
      })
      let deltas = ''
      runner.on('content', (d) => { deltas += d })
      const final = await runner.finalChatCompletion()
      t.equal(final.model, 'qwen3-max')
      t.equal(final.choices.length, 1)
      t.equal(final.choices[0]!.message.role, 'assistant')
      t.equal(final.choices[0]!.message.content, defaultAnswer(prompt))
      t.equal(final.choices[0]!.finish_reason, 'stop')
      t.equal(deltas, defaultAnswer(prompt), "the 'content' events add up to the answer")
      t.equal(await runner.finalContent(), defaultAnswer(prompt))
      checkUsage(t, final.usage)
    })

    t.test('openai: reasoning_content for -thinking models', async (t) => {
      const h = await harness(t)
      const { client } = openaiClient(h)

      for (const model of ['qwen3-max-thinking', 'qwen3.5-plus-thinking']) {
        const prompt = `Think first, then answer (${model})`
        const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: prompt }] })
        const msg = r.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string }
        t.equal(r.model, model, `${model}: model echoed`)
        t.equal(msg.content, defaultAnswer(prompt), `${model}: answer`)
        t.equal(msg.reasoning_content, defaultReasoning(prompt), `${model}: reasoning_content`)
        t.equal(r.choices[0]!.finish_reason, 'stop')
        checkUsage(t, r.usage, true)

        // the same through the raw stream: reasoning deltas first, then content
        const s = await client.chat.completions.create({
          model, messages: [{ role: 'user', content: prompt }], stream: true, stream_options: { include_usage: true },
        })
        let reasoning = ''
        let content = ''
        let reasoningAfterContent = false
        let usage: Usage | null | undefined
        for await (const c of s) {
          const d = c.choices[0]?.delta as { content?: string | null; reasoning_content?: string } | undefined
          if (d?.reasoning_content) { reasoning += d.reasoning_content; if (content) reasoningAfterContent = true }
          if (d?.content) content += d.content
          if (c.usage) usage = c.usage
        }
        t.equal(reasoning, defaultReasoning(prompt), `${model}: streamed reasoning`)
        t.equal(content, defaultAnswer(prompt), `${model}: streamed content`)
        t.notOk(reasoningAfterContent, `${model}: reasoning comes before content`)
        t.same(usage, r.usage, `${model}: stream and non-stream usage agree`)
      }

      // the same model without -thinking does not think
      const plain = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'no thinking' }] })
      t.equal((plain.choices[0]!.message as unknown as Record<string, unknown>).reasoning_content, undefined)
    })

    t.test('openai: models.list and models.retrieve', async (t) => {
      const h = await harness(t)
      const { client } = openaiClient(h)
      const ids: string[] = []
      for await (const m of client.models.list()) {
        ids.push(m.id)
        t.equal(m.object, 'model')
        t.ok(Number.isInteger(m.created), `${m.id}: created is an integer`)
        t.equal(typeof m.owned_by, 'string')
      }
      for (const id of ['qwen3-max', 'qwen3-max-thinking', 'qwen3.5-plus', 'qwen3.5-plus-thinking']) t.ok(ids.includes(id), `lists ${id}`)

      const m = await client.models.retrieve('qwen3-max-thinking')
      t.equal(m.id, 'qwen3-max-thinking')
      t.equal(m.object, 'model')
      t.ok(Number.isInteger(m.created))

      const err = await client.models.retrieve('no-such-model').then(() => null, (e: unknown) => e)
      t.ok(err instanceof NotFoundError, 'NotFoundError for an unknown id')
      t.equal((err as NotFoundError).status, 404)
      t.equal((err as NotFoundError).code, 'model_not_found')
    })

    t.test('openai: error classes', async (t) => {
      t.test('unknown model → NotFoundError, nothing sent upstream', async (t) => {
        const h = await harness(t)
        const { client, requests } = openaiClient(h, { maxRetries: 2 })
        const err = await client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
        t.ok(err instanceof NotFoundError, `NotFoundError (got ${String(err)})`)
        const e = err as NotFoundError
        t.equal(e.status, 404)
        t.equal(e.code, 'model_not_found')
        t.equal(e.param, 'model')
        t.equal(e.type, 'invalid_request_error')
        t.ok(e.requestID, 'request id on the error')
        t.equal(requests(), 1, '404 is not retried')
        t.equal(upstreamCompletions(h.sim), 0)
      })

      t.test('wrong or missing API key → AuthenticationError; the right key works', async (t) => {
        const h = await harness(t, { gateway: { apiKey: 'sk-test' } })
        const wrong = openaiClient(h, { apiKey: 'sk-wrong', maxRetries: 2 })
        const err = await wrong.client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
        t.ok(err instanceof AuthenticationError, `AuthenticationError (got ${String(err)})`)
        t.equal((err as AuthenticationError).status, 401)
        t.equal(wrong.requests(), 1, '401 is not retried')

        // no Authorization header at all (the SDK always sends one, so strip it per request)
        const missing = await wrong.client.chat.completions
          .create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }, { headers: { authorization: null } })
          .then(() => null, (e: unknown) => e)
        t.ok(missing instanceof AuthenticationError, `missing key → AuthenticationError (got ${String(missing)})`)

        const listErr = await wrong.client.models.list().then(() => null, (e: unknown) => e)
        t.ok(listErr instanceof AuthenticationError, '/v1/models is protected too')
        t.equal(upstreamCompletions(h.sim), 0)

        const right = openaiClient(h, { apiKey: 'sk-test' })
        const r = await right.client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] })
        t.equal(r.choices[0]!.message.content, defaultAnswer('hi'))
      })

      t.test('a tool_choice naming an undeclared tool → BadRequestError naming the param', async (t) => {
        const h = await harness(t)
        const { client, requests } = openaiClient(h, { maxRetries: 2 })
        const err = await client.chat.completions.create({
          model: 'qwen3-max',
          messages: [{ role: 'user', content: 'weather in Paris?' }],
          tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
          tool_choice: { type: 'function', function: { name: 'get_time' } },
        }).then(() => null, (e: unknown) => e)
        t.ok(err instanceof BadRequestError, `BadRequestError (got ${String(err)})`)
        const e = err as BadRequestError
        t.equal(e.status, 400)
        t.equal(e.param, 'tool_choice.function.name')
        t.equal(e.code, 'invalid_value')
        t.equal(requests(), 1, '400 is not retried')
        t.equal(upstreamCompletions(h.sim), 0)
      })

      t.test('upstream rate limit → RateLimitError (insufficient_quota), one upstream attempt', async (t) => {
        const h = await harness(t, { sim: { demoAccounts: 1 } })
        h.sim.queue(h.sim.accounts[0]!.email, { fail: 'rate_limited', rateLimitHours: 2 })
        const { client, requests } = openaiClient(h)
        const err = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
        t.ok(err instanceof RateLimitError, `RateLimitError (got ${String(err)})`)
        const e = err as RateLimitError
        t.equal(e.status, 429)
        t.equal(e.code, 'insufficient_quota')
        t.equal(e.type, 'insufficient_quota')
        const retryAfter = Number(e.headers?.get('retry-after'))
        t.ok(retryAfter > 60 && retryAfter <= 2 * 3600, `retry-after ${retryAfter}s reflects the 2 h wait`)
        t.equal(e.headers?.get('x-should-retry'), 'false')
        t.equal(requests(), 1)
        t.equal(upstreamCompletions(h.sim), 1, 'one upstream completion attempt')
      })

      t.test('rate limit on every account → the gateway fails over, then 429', async (t) => {
        const h = await harness(t)
        t.equal(h.sim.accounts.length, 2)
        for (const a of h.sim.accounts) h.sim.queue(a.email, { fail: 'rate_limited', rateLimitHours: 3 })
        const { client, requests } = openaiClient(h)
        const err = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
        t.ok(err instanceof RateLimitError, `RateLimitError (got ${String(err)})`)
        t.equal(requests(), 1)
        const attempts = h.sim.log().filter((e) => e.path === COMPLETIONS_PATH)
        t.equal(attempts.length, 2, 'one attempt per account')
        t.same(new Set(attempts.map((e) => e.account)), new Set(h.sim.accounts.map((a) => a.email)), 'both accounts tried')
      })

      t.test('upstream 5xx → InternalServerError (502)', async (t) => {
        const h = await harness(t, { sim: { demoAccounts: 1 } })
        h.sim.queue(h.sim.accounts[0]!.email, { fail: { status: 500, body: 'boom' } })
        const { client } = openaiClient(h)
        const err = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
        t.ok(err instanceof InternalServerError, `InternalServerError (got ${String(err)})`)
        t.equal((err as InternalServerError).status, 502)
        t.equal(typeof (err as InternalServerError).type, 'string')
      })

      t.test('in-stream error frame → APIError while iterating', async (t) => {
        const h = await harness(t, { sim: { demoAccounts: 1 } })
        const email = h.sim.accounts[0]!.email
        const { client } = openaiClient(h)
        const run = async (prompt: string) => {
          const stream = await client.chat.completions.create({
            model: 'qwen3-max', messages: [{ role: 'user', content: prompt }], stream: true, stream_options: { include_usage: true },
          })
          const seen: OpenAI.ChatCompletionChunk[] = []
          const err = await (async () => { for await (const c of stream) seen.push(c) })().then(() => null, (e: unknown) => e)
          return { err, seen }
        }

        // the error frame arrives in the same read as the first frames
        h.sim.queue(email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
        const fast = await run('this one breaks')
        t.ok(fast.err instanceof APIError, `APIError (got ${String(fast.err)})`)
        const e = fast.err as APIError
        t.equal(e.status, undefined, 'raised from the stream body, not an HTTP status')
        t.ok(typeof e.message === 'string' && e.message.length > 0, `message: ${e.message}`)
        t.equal(typeof (e.error as { type?: unknown } | undefined)?.type, 'string', 'the error frame has a type')
        t.ok(fast.seen.every((c) => c.choices.every((ch) => ch.finish_reason === null)), 'no finish_reason before the error')

        // frames spaced out: the partial answer reaches the client before the error
        const prompt = 'this one breaks later'
        h.sim.queue(email, { errorAfterFrames: 3, frameDelayMs: 30 })
        const slow = await run(prompt)
        t.ok(slow.err instanceof APIError, `APIError (got ${String(slow.err)})`)
        t.equal(slow.seen[0]?.choices[0]?.delta.role, 'assistant', 'the role chunk came first')
        const partial = slow.seen.map((c) => c.choices[0]?.delta?.content ?? '').join('')
        t.ok(partial.length > 0 && defaultAnswer(prompt).startsWith(partial), `partial answer is a prefix: ${JSON.stringify(partial)}`)
        t.ok(slow.seen.every((c) => c.choices.every((ch) => ch.finish_reason === null)), 'no finish_reason before the error')
        t.equal(upstreamCompletions(h.sim), 2, 'no failover once the stream is committed')
      })
    })

    t.test('openai retry semantics: a long rate limit is not retried by the SDK', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      const email = h.sim.accounts[0]!.email
      h.sim.queue(email, { fail: 'rate_limited', rateLimitHours: 10 })
      const { client, requests } = openaiClient(h, { maxRetries: 2 })
      const err = await client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'hi' }] }).then(() => null, (e: unknown) => e)
      // Had the SDK retried, the second attempt would have succeeded (only one failure is queued).
      t.ok(err instanceof RateLimitError, `RateLimitError (got ${String(err)})`)
      const e = err as RateLimitError
      t.equal(e.code, 'insufficient_quota')
      t.equal(e.headers?.get('x-should-retry'), 'false')
      t.ok(Number(e.headers?.get('retry-after')) > 60, 'retry-after over 60 s')
      t.equal(requests(), 1, 'exactly one HTTP request from the SDK')
      t.equal(upstreamCompletions(h.sim), 1, 'exactly one upstream completion attempt')

      // control: a retryable failure (502) IS retried by the same kind of client, and the retry succeeds
      // (a fresh gateway: the first one rightly keeps its only account cooling down for 10 hours)
      const h2 = await harness(t, { sim: { demoAccounts: 1 } })
      h2.sim.queue(h2.sim.accounts[0]!.email, { fail: { status: 500, body: 'boom' } })
      const second = openaiClient(h2, { maxRetries: 2 })
      const ok = await second.client.chat.completions.create({ model: 'qwen3-max', messages: [{ role: 'user', content: 'retry me' }] })
      t.equal(ok.choices[0]!.message.content, defaultAnswer('retry me'))
      t.equal(second.requests(), 2, 'a 502 is retried once, then succeeds')
      t.equal(upstreamCompletions(h2.sim), 2)
    })

    function compat (h: Harness) {
      return createOpenAICompatible({ name: 'qwen', baseURL: `${h.url}/v1`, apiKey: 'x', includeUsage: true })
    }

    t.test('AI SDK: generateText', async (t) => {
      const h = await harness(t)
      const provider = compat(h)
      const prompt = 'Hello from the AI SDK'
      const r = await generateText({ model: provider('qwen3-max'), prompt, maxRetries: 0, abortSignal: AbortSignal.timeout(TIMEOUT_MS) })
      t.equal(r.text, defaultAnswer(prompt))
      t.equal(r.finishReason, 'stop')
      t.equal(r.reasoningText, undefined, 'no reasoning without -thinking')
      t.ok((r.usage.inputTokens ?? 0) > 0, `inputTokens ${r.usage.inputTokens}`)
      t.ok((r.usage.outputTokens ?? 0) > 0, `outputTokens ${r.usage.outputTokens}`)
      t.equal(r.usage.totalTokens, (r.usage.inputTokens ?? 0) + (r.usage.outputTokens ?? 0))
      t.equal(r.response.modelId, 'qwen3-max', 'model echoed')

      const thinking = await generateText({ model: provider('qwen3-max-thinking'), prompt, maxRetries: 0, abortSignal: AbortSignal.timeout(TIMEOUT_MS) })
      t.equal(thinking.text, defaultAnswer(prompt))
      t.equal(thinking.reasoningText, defaultReasoning(prompt), 'reasoning_content → reasoningText')
      t.ok((thinking.usage.outputTokenDetails?.reasoningTokens ?? 0) > 0, 'reasoning tokens reported')
      t.equal(thinking.response.modelId, 'qwen3-max-thinking')

      // a system prompt is folded in front of the user text
      const sys = await generateText({ model: provider('qwen3-max'), system: 'Be terse.', prompt, maxRetries: 0, abortSignal: AbortSignal.timeout(TIMEOUT_MS) })
      t.equal(sys.text, defaultAnswer(`Be terse.\n\n${prompt}`))
    })

    t.test('AI SDK: streamText fullStream with reasoning', async (t) => {
      const h = await harness(t)
      const provider = compat(h)
      for (const model of ['qwen3-max-thinking', 'qwen3.5-plus-thinking']) {
        const prompt = `Stream with thinking via the AI SDK (${model})`
        const errors: unknown[] = []
        const s = streamText({ model: provider(model), prompt, maxRetries: 0, abortSignal: AbortSignal.timeout(TIMEOUT_MS), onError: ({ error }) => { errors.push(error) } })
        let text = ''
        let reasoning = ''
        const types: string[] = []
        let finish: { finishReason: string; totalUsage: { inputTokens?: number; outputTokens?: number; totalTokens?: number } } | undefined
        for await (const part of s.fullStream) {
          types.push(part.type)
          if (part.type === 'text-delta') text += part.text
          else if (part.type === 'reasoning-delta') reasoning += part.text
          else if (part.type === 'finish') finish = part
        }
        t.same(errors, [], `${model}: no errors`)
        t.equal(text, defaultAnswer(prompt), `${model}: text deltas`)
        t.equal(reasoning, defaultReasoning(prompt), `${model}: reasoning deltas`)
        t.ok(types.lastIndexOf('reasoning-delta') < types.indexOf('text-delta'), `${model}: reasoning before text`)
        t.notOk(types.includes('error'), `${model}: no error part`)
        t.ok(finish, `${model}: a finish part`)
        t.equal(finish?.finishReason, 'stop')
        t.ok((finish?.totalUsage.inputTokens ?? 0) > 0 && (finish?.totalUsage.outputTokens ?? 0) > 0, `${model}: usage in the finish part`)
        t.equal(await s.text, defaultAnswer(prompt))
        t.equal(await s.reasoningText, defaultReasoning(prompt))
        const usage = await s.usage
        t.equal(usage.totalTokens, (usage.inputTokens ?? 0) + (usage.outputTokens ?? 0))
        t.ok((usage.outputTokenDetails?.reasoningTokens ?? 0) > 0, `${model}: reasoning tokens`)
        t.equal((await s.response).modelId, model)
      }
    })

    t.test('AI SDK: streamText without thinking', async (t) => {
      const h = await harness(t)
      const prompt = 'Plain streaming via the AI SDK'
      const s = streamText({ model: compat(h)('qwen3-max'), prompt, maxRetries: 0, abortSignal: AbortSignal.timeout(TIMEOUT_MS) })
      const parts: string[] = []
      let text = ''
      for await (const part of s.fullStream) {
        parts.push(part.type)
        if (part.type === 'text-delta') text += part.text
      }
      t.equal(text, defaultAnswer(prompt))
      t.notOk(parts.includes('reasoning-delta'))
      t.equal(await s.finishReason, 'stop')
      const usage = await s.totalUsage
      t.ok((usage.inputTokens ?? 0) > 0 && (usage.outputTokens ?? 0) > 0)
    })

    t.test('AI SDK: an in-stream error yields an error part', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      h.sim.queue(h.sim.accounts[0]!.email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
      const errors: unknown[] = []
      const s = streamText({
        model: compat(h)('qwen3-max'), prompt: 'this one breaks', maxRetries: 0, abortSignal: AbortSignal.timeout(TIMEOUT_MS),
        onError: ({ error }) => { errors.push(error) },
      })
      const parts: Array<{ type: string; error?: unknown; finishReason?: string }> = []
      for await (const part of s.fullStream) parts.push(part)
      const errorParts = parts.filter((p) => p.type === 'error')
      t.equal(errorParts.length, 1, 'one error part')
      const msg = String((errorParts[0]?.error as { message?: unknown } | undefined)?.message ?? errorParts[0]?.error)
      t.ok(msg.length > 0, `error: ${msg}`)
      t.equal(errors.length, 1, 'onError called once')
      const finish = parts.find((p) => p.type === 'finish')
      t.not(finish?.finishReason, 'stop', `not a clean stop (finish: ${finish?.finishReason})`)
      t.equal(upstreamCompletions(h.sim), 1)
    })

    function chatOpenAI (h: Harness, model: string): ChatOpenAI {
      return new ChatOpenAI({ model, apiKey: 'x', configuration: { baseURL: `${h.url}/v1` }, maxRetries: 0, timeout: TIMEOUT_MS })
    }

    t.test('LangChain: invoke', async (t) => {
      const h = await harness(t)
      const prompt = 'Hello from LangChain'
      const r = await chatOpenAI(h, 'qwen3-max').invoke(prompt)
      t.equal(r.content, defaultAnswer(prompt))
      t.equal(r.additional_kwargs.reasoning_content, undefined)
      const u = r.usage_metadata
      t.ok(u && u.input_tokens > 0 && u.output_tokens > 0, 'usage_metadata tokens > 0')
      t.equal(u?.total_tokens, (u?.input_tokens ?? 0) + (u?.output_tokens ?? 0))
      t.equal(r.response_metadata.model_name, 'qwen3-max', 'model echoed')
      t.equal(r.response_metadata.finish_reason, 'stop')

      const thinking = await chatOpenAI(h, 'qwen3-max-thinking').invoke([['system', 'Be terse.'], ['human', prompt]])
      const folded = `Be terse.\n\n${prompt}`
      t.equal(thinking.content, defaultAnswer(folded))
      t.equal(thinking.additional_kwargs.reasoning_content, defaultReasoning(folded))
      t.ok((thinking.usage_metadata?.output_token_details?.reasoning ?? 0) > 0, 'reasoning tokens mapped')
      t.equal(thinking.response_metadata.model_name, 'qwen3-max-thinking')
    })

    t.test('LangChain: stream', async (t) => {
      const h = await harness(t)
      for (const model of ['qwen3-max', 'qwen3-max-thinking']) {
        const prompt = `Stream via LangChain (${model})`
        const llm = chatOpenAI(h, model)
        const whole = await llm.invoke(prompt)
        let acc: AIMessageChunk | undefined
        let n = 0
        for await (const c of await llm.stream(prompt)) { acc = acc ? acc.concat(c) : c; n++ }
        t.ok(n > 2, `${model}: ${n} chunks`)
        t.equal(acc?.constructor.name, 'AIMessageChunk', `${model}: an AIMessageChunk (role carried)`)
        t.equal(acc?.content, defaultAnswer(prompt), `${model}: concatenated content`)
        t.equal(acc?.content, whole.content, `${model}: same as invoke`)
        const u = acc?.usage_metadata
        t.ok(u && u.input_tokens > 0 && u.output_tokens > 0, `${model}: usage_metadata present (streamUsage)`)
        t.equal(u?.total_tokens, (u?.input_tokens ?? 0) + (u?.output_tokens ?? 0))
        t.same(
          [u?.input_tokens, u?.output_tokens],
          [whole.usage_metadata?.input_tokens, whole.usage_metadata?.output_tokens],
          `${model}: same usage as invoke`,
        )
        if (model.endsWith('-thinking')) {
          t.equal(acc?.additional_kwargs.reasoning_content, defaultReasoning(prompt), `${model}: streamed reasoning_content`)
        } else {
          t.equal(acc?.additional_kwargs.reasoning_content, undefined)
        }
      }
    })

    t.test('LangChain: errors surface as exceptions', async (t) => {
      const h = await harness(t, { sim: { demoAccounts: 1 } })
      const email = h.sim.accounts[0]!.email
      const err = await chatOpenAI(h, 'gpt-nope').invoke('hi').then(() => null, (e: unknown) => e)
      t.ok(err instanceof Error, `unknown model rejects (got ${String(err)})`)
      t.equal((err as { status?: number }).status, 404)

      h.sim.queue(email, { errorAfterFrames: 3, pauseAfterFrames: 2 })
      const streamErr = await (async () => { for await (const c of await chatOpenAI(h, 'qwen3-max').stream('this one breaks')) void c })().then(() => null, (e: unknown) => e)
      t.ok(streamErr instanceof Error, `in-stream error rejects (got ${String(streamErr)})`)

      // LangChain retries on its own, but stops on insufficient_quota: one request even with retries on
      h.sim.clearLog()
      h.sim.queue(email, { fail: 'rate_limited', rateLimitHours: 10 })
      const llm = new ChatOpenAI({ model: 'qwen3-max', apiKey: 'x', configuration: { baseURL: `${h.url}/v1` }, maxRetries: 3, timeout: TIMEOUT_MS })
      const quota = await llm.invoke('hi').then(() => null, (e: unknown) => e)
      t.ok(quota instanceof Error, `rate limit rejects (got ${String(quota)})`)
      t.equal((quota as { status?: number }).status, 429)
      t.equal(upstreamCompletions(h.sim), 1, 'not retried by LangChain')
    })
  })
}
