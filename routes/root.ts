import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { LandingSchema } from '../src/schemas.js'
import { VERSION } from '../src/version.js'

/** `GET /`: a small landing document naming the version and the endpoints. */
const root: FastifyPluginAsyncTypebox = async (fastify) => {
  const p = fastify.prefix
  const endpoints = [
    { method: 'POST', path: `${p}/v1/chat/completions`, description: 'OpenAI chat completions (stream and non-stream)' },
    { method: 'GET', path: `${p}/v1/models`, description: 'Models, with -thinking / -search variants' },
    { method: 'GET', path: `${p}/v1/models/:id`, description: 'One model' },
    { method: 'POST', path: `${p}/v1/messages`, description: 'Anthropic Messages API (stream and non-stream, tool use, thinking)' },
    { method: 'POST', path: `${p}/v1/messages/count_tokens`, description: 'Anthropic token count (an estimate)' },
    { method: 'POST', path: `${p}/v1/responses`, description: 'OpenAI Responses API (stateless; function and custom tools)' },
    { method: 'POST', path: `${p}/v1/images/generations`, description: 'OpenAI Images API: text to image (url or b64_json)' },
    { method: 'POST', path: `${p}/v1/images/edits`, description: 'OpenAI Images API: image edits (multipart)' },
    { method: 'POST', path: `${p}/v1/videos`, description: 'OpenAI Videos API: create a video job (JSON or multipart)' },
    { method: 'GET', path: `${p}/v1/videos/:id`, description: 'A video job' },
    { method: 'GET', path: `${p}/v1/videos/:id/content`, description: 'The finished video (MP4)' },
    { method: 'GET', path: `${p}/health`, description: 'Status, token validity and identity pool counts' },
    { method: 'POST', path: `${p}/refresh-token`, description: 'Refresh upstream tokens (needs the API key)' },
    { method: 'GET', path: `${p}/ready`, description: 'Readiness: 200 when a completion can be served now, 503 otherwise (and while shutting down)' },
    { method: 'GET', path: `${p}/metrics`, description: 'Prometheus metrics (needs the admin key unless METRICS_PUBLIC=true)' },
    { method: 'GET', path: `${p}/openapi.json`, description: 'OpenAPI 3.1 description of every route' },
  ]
  fastify.get('/', { config: { qwenAuth: 'public' }, schema: { response: { 200: LandingSchema } } }, async () => ({
    name: 'qwen-gateway',
    version: VERSION,
    description: 'The Qwen web chat served as the OpenAI API',
    endpoints,
    docs: 'See README.md for configuration, examples and the folded-history format',
  }))
}

export default root
