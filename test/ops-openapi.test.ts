/** `GET /openapi.json`: an OpenAPI 3.1 document generated from the route schemas, every route described. */
import Fastify, { type RouteOptions } from 'fastify'
import { Type } from '@sinclair/typebox'
import t from 'tap'
import { qwenGatewayRoot } from '../src/index.js'
import { harness, startSim } from './helpers/setup.js'

interface Operation { responses?: Record<string, { description?: string }>; security?: unknown[]; requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }; parameters?: Array<{ in: string; name: string }> }
interface Doc { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } }

const METHODS = ['get', 'post', 'put', 'patch', 'delete', 'head', 'options']

t.test('the document: version, every route, responses, security on protected routes', async (t) => {
  const h = await harness(t, { sim: { demoAccounts: 1 }, gateway: { apiKey: 'sk-a' } })
  const r = await fetch(`${h.url}/openapi.json`)
  t.equal(r.status, 200, 'public')
  t.match(r.headers.get('content-type'), /application\/json/)
  const doc = await r.json() as Doc
  t.equal(doc.openapi, '3.1.0')
  t.equal(doc.info.title, 'qwen-gateway')
  t.match(doc.info.version, /^\d+\.\d+\.\d+/)
  t.ok(doc.components.securitySchemes.apiKey)

  const expected: Array<[string, string, boolean]> = [
    ['/', 'get', true], ['/health', 'get', true], ['/ready', 'get', true], ['/openapi.json', 'get', true],
    ['/metrics', 'get', false], ['/v1/models', 'get', false], ['/v1/models/{id}', 'get', false],
    ['/v1/chat/completions', 'post', false], ['/refresh-token', 'post', false],
  ]
  for (const [path, method, open] of expected) {
    const op = doc.paths[path]?.[method]
    t.ok(op, `${method.toUpperCase()} ${path} is described`)
    t.equal(op?.security === undefined, open, `${path}: ${open ? 'public' : 'needs a key'}`)
  }
  let operations = 0
  for (const [path, item] of Object.entries(doc.paths)) {
    t.match(path, /^\//)
    for (const [method, op] of Object.entries(item)) {
      t.ok(METHODS.includes(method), `${path}: ${method} is an HTTP method`)
      operations++
      const responses = Object.entries(op.responses ?? {})
      t.ok(responses.length > 0, `${method} ${path} has responses`)
      for (const [code, res] of responses) {
        t.match(code, /^([1-5]\d\d|[1-5]XX|default)$/, `${method} ${path}: ${code} is a status`)
        t.type(res.description, 'string')
      }
      for (const name of path.match(/\{([^}]+)\}/g) ?? []) {
        t.ok(op.parameters?.some((p) => p.in === 'path' && `{${p.name}}` === name), `${path}: ${name} is declared`)
      }
    }
  }
  t.ok(operations >= expected.length)
  const chat = doc.paths['/v1/chat/completions']!.post!
  const schema = chat.requestBody!.content['application/json']!.schema
  for (const field of ['model', 'messages', 'temperature', 'tools', 'tool_choice', 'stream']) t.ok(schema.properties?.[field], `the request body describes ${field}`)
  t.ok(chat.responses!['200'] && chat.responses!['4XX'], 'success and error responses')
})

t.test('every route is in the document, routes added later included', async (t) => {
  const sim = await startSim(t, { demoAccounts: 1 })
  const host = Fastify({ logger: false })
  t.teardown(() => host.close())
  const routes: RouteOptions[] = []
  host.addHook('onRoute', (r) => { routes.push(r) })
  await host.register(qwenGatewayRoot, { qwenBaseUrl: sim.url, cookies: [] })
  // A route of a later issue, with its schema.
  host.post('/v1/later', { schema: { body: Type.Object({ model: Type.String() }), response: { 200: Type.Object({ id: Type.String() }) } } }, async () => ({ id: 'x' }))
  await host.ready()
  const doc = (await host.inject({ method: 'GET', url: '/openapi.json' })).json() as Doc
  const documented = new Set(Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`)))
  // Routes that hide themselves (the dashboard's page and static files) are not operations of the API.
  const served = routes.filter((r) => (r.schema as { hide?: boolean } | undefined)?.hide !== true).flatMap((r) => (Array.isArray(r.method) ? r.method : [r.method]).map((m) => `${m} ${r.url.replace(/:(\w+)/g, '{$1}')}`)).filter((k) => !k.startsWith('HEAD ') && k !== 'OPTIONS *')
  // (HEAD twins of GET routes and the CORS preflight are not operations of the API.)
  t.ok(served.length >= 10)
  for (const k of served) t.ok(documented.has(k), `${k} is documented`)
  t.ok(doc.paths['/v1/later']?.post?.requestBody, 'the later route with its request body')
  t.ok(doc.paths['/v1/messages']?.post?.requestBody && doc.paths['/v1/responses']?.post?.requestBody, 'the Anthropic and Responses faces with their request bodies')
})
