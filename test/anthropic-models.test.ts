/** `GET /v1/models` answers in the Anthropic list shape when the request carries `anthropic-version`. */
import t from 'tap'
import { harness } from './helpers/setup.js'

t.test('model list and retrieve in both shapes', async (t) => {
  const h = await harness(t)
  const openai = await (await fetch(`${h.url}/v1/models`)).json() as { object: string; data: Array<{ id: string; object: string }> }
  t.equal(openai.object, 'list')
  t.ok(openai.data.length > 0)

  const res = await fetch(`${h.url}/v1/models`, { headers: { 'anthropic-version': '2023-06-01', 'x-api-key': 'anything' } })
  t.equal(res.status, 200)
  const a = await res.json() as { data: Array<Record<string, unknown>>; has_more: boolean; first_id: string; last_id: string }
  t.same(a.data.map((m) => m.id), openai.data.map((m) => m.id), 'the same models')
  t.ok(a.data.every((m) => m.type === 'model' && m.display_name === m.id && typeof m.created_at === 'string' && !Number.isNaN(Date.parse(m.created_at as string))))
  t.notOk('object' in a)
  t.equal(a.has_more, false)
  t.equal(a.first_id, a.data[0]!.id)
  t.equal(a.last_id, a.data[a.data.length - 1]!.id)

  const one = await (await fetch(`${h.url}/v1/models/qwen3-max`, { headers: { 'anthropic-version': '2023-06-01' } })).json()
  t.match(one, { type: 'model', id: 'qwen3-max', display_name: 'qwen3-max' })
  t.notOk('object' in (one as object))
  const plain = await (await fetch(`${h.url}/v1/models/qwen3-max`)).json()
  t.match(plain, { object: 'model', id: 'qwen3-max' })
})

t.test('an empty list has null first and last ids', async (t) => {
  const { anthropicModelList } = await import('../src/anthropic/models.js')
  t.same(anthropicModelList([]), { data: [], has_more: false, first_id: null, last_id: null })
})
