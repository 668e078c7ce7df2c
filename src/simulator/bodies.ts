/** Non-stream bodies of the upstream: application errors, anti-bot answers (protocol §3.6). */
import { randomUUID } from 'node:crypto'
import type { AppErrorBody } from '../upstream/protocol.js'
import type { ScenarioFail } from './types.js'

export interface Reply {
  status: number
  contentType: string
  body: string
}

const JSON_TYPE = 'application/json'

export function jsonReply (status: number, body: unknown): Reply {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(body) }
}

/** `{"success":false,"request_id":…,"data":{code,details,…}}`. */
export function appError (status: number, code: string, details: string, extra: Record<string, unknown> = {}): Reply {
  const body: AppErrorBody = { success: false, request_id: randomUUID(), data: { code, details, ...extra } }
  return jsonReply(status, body)
}

export const badRequest = (details: string): Reply => appError(200, 'Bad_Request', details)
/** A request that does not match the endpoint's schema at all (FastAPI-style, HTTP 400). */
export const invalidRequest = (details: string): Reply => appError(400, 'Bad_Request', `RequestValidationError: ${details}`)
export const unauthorized = (details: string, status = 401): Reply => appError(status, 'Unauthorized', details)
export const EXPIRED = 'Token has expired, please log in again.'

const CAPTCHA_URL = 'https://chat.qwen.ai/punish?action=captcha&x5secdata=c2ltdWxhdGVk&x5step=1'

const WAF_PAGE = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Verification</title>
<script>window._config_ = {"action":"captcha","url":"${CAPTCHA_URL}","dialog":"aliyun_waf"};</script>
<script src="https://g.alicdn.com/AWSC/AWSC/awsc.js"></script></head>
<body><div id="aliyun_waf_captcha" class="nc-container">
<p>We have detected unusual traffic. Please slide to verify that you are not a robot.</p>
<div id="nc_1_wrapper"></div></div></body></html>
`

/** The reply for a scripted failure. */
export function failReply (fail: ScenarioFail, rateLimitHours = 10): Reply {
  if (typeof fail === 'object') {
    return { status: fail.status, contentType: fail.contentType ?? 'text/plain', body: fail.body ?? '' }
  }
  switch (fail) {
    case 'rate_limited':
      return appError(200, 'RateLimited', "You've reached the upper limit for today's usage.", {
        template: 'You have reached the daily usage limit. Please wait {{num}} hours before trying again.',
        num: rateLimitHours,
      })
    case 'unauthorized': return unauthorized(EXPIRED, 200)
    case 'unauthorized_401': return unauthorized(EXPIRED, 401)
    case 'challenge_json':
      return jsonReply(200, { ret: ['FAIL_SYS_USER_VALIDATE', 'RGV587_ERROR::SM'], data: { url: CAPTCHA_URL } })
    case 'challenge_html': return { status: 200, contentType: 'text/html; charset=utf-8', body: WAF_PAGE }
    case 'bad_request': return badRequest('internal error')
    case 'not_found': return appError(404, 'Not_Found', 'Chat not found')
  }
}
