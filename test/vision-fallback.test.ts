/** The vision fallback decision, against the real model catalogue (built-in list). */
import t from 'tap'
import { GatewayError, ModelNotFoundError } from '../src/errors.js'
import type { Attachment } from '../src/media/attachment.js'
import { ModelCatalog, type ResolvedModel } from '../src/models.js'
import { needsVision, visionModel } from '../src/turn/vision.js'

const attachment = (kind: Attachment['kind']): Attachment => ({ kind, mime: 'x/y', bytes: Buffer.from('x'), filename: 'f', sha256: '0', param: 'messages[0].content[0]' })
const IMAGE = [attachment('image')]

function catalog (): ModelCatalog {
  // The list is never fetched: the built-in list serves (qwen3-coder-plus has no vision, qwen3-vl-plus has).
  return new ModelCatalog({ ttlMs: 1, aliases: {}, now: () => 0, fetch: async () => await new Promise(() => {}), onError: () => {}, waitBudgetMs: 0 })
}

function deps (c: ModelCatalog, fallback = 'qwen3-vl-plus') {
  const told: string[][] = []
  return { told, d: { fallback, resolve: async (n: string) => await c.resolve(n), onFallback: (a: string, b: string) => { told.push([a, b]) } } }
}

t.test('which attachments need vision', async (t) => {
  t.ok(needsVision(IMAGE))
  t.ok(needsVision([attachment('audio'), attachment('video')]))
  t.notOk(needsVision([attachment('audio'), attachment('file')]))
  t.notOk(needsVision([]))
})

t.test('an image for a model without vision goes to the fallback, named as requested', async (t) => {
  const c = catalog()
  t.teardown(() => c.close())
  const { told, d } = deps(c)
  const m = await visionModel(await c.resolve('qwen3-coder-plus-search'), IMAGE, d)
  t.same([m.requested, m.base, m.capabilities.vision, m.search, m.chatType], ['qwen3-coder-plus-search', 'qwen3-vl-plus', true, true, 'search'])
  t.same(told, [['qwen3-coder-plus-search', 'qwen3-vl-plus']], 'told once')
  const thinking = await visionModel(await c.resolve('qwen3-235b-a22b-thinking'), IMAGE, d)
  t.same([thinking.base, thinking.thinking, thinking.search, thinking.chatType], ['qwen3-vl-plus', true, false, 't2t'])
})

t.test('left alone: vision models, requests without images, generation turns', async (t) => {
  const c = catalog()
  t.teardown(() => c.close())
  const { told, d } = deps(c)
  const vl = await c.resolve('qwen3-max')
  t.equal(await visionModel(vl, IMAGE, d), vl)
  const coder = await c.resolve('qwen3-coder-plus')
  t.equal(await visionModel(coder, [attachment('file')], d), coder)
  const gen: ResolvedModel = { ...coder, chatType: 't2i' }
  t.equal(await visionModel(gen, IMAGE, d), gen)
  t.same(told, [])
})

t.test('a fallback that does not exist or cannot see: 400 naming the model', async (t) => {
  const c = catalog()
  t.teardown(() => c.close())
  const coder = await c.resolve('qwen3-coder-plus')
  const unknown = async (n: string): Promise<ResolvedModel> => { throw new ModelNotFoundError(n) }
  for (const [d, why] of [[deps(c, 'qwen3-235b-a22b').d, /cannot either/], [{ ...deps(c, 'qwen9').d, resolve: unknown }, /`qwen9` \(VISION_FALLBACK_MODEL\) is not available/]] as const) {
    const err = await visionModel(coder, IMAGE, d).catch((e: unknown) => e) as GatewayError
    t.type(err, GatewayError)
    t.same([err.statusCode, err.param, err.code], [400, 'model', 'model_not_vision'])
    t.match(err.message, why)
  }
  const boom = new Error('catalogue closed')
  t.equal(await visionModel(coder, IMAGE, { ...deps(c).d, resolve: async () => { throw boom } }).catch((e: unknown) => e), boom, 'other errors pass through')
})
