/** The upload wire's pure parts, the upload cache and the uploader's naming and identity keys. */
import t from 'tap'
import { MemoryUploadCache } from '../src/media/upload-cache.js'
import { identityKey, uploadName } from '../src/media/uploader.js'
import { encodePng, pngSize } from '../src/media/png.js'
import {
  fileObject, objectUrl, ossSignature, ossStringToSign, parseStatusOf, putFailure, putHeaders, stsBody, stsFileType, stsGrantOf, type StsGrant,
} from '../src/upstream/upload.js'
import type { CredentialLease } from '../src/turn/lease.js'

const grant: StsGrant = {
  accessKeyId: 'STS.ak', accessKeySecret: 'secret', securityToken: 'CAIStoken', bucket: 'qwen-webui-prod', region: 'oss-ap-southeast-1',
  endpoint: undefined, filePath: 'user/id_a b.png', fileUrl: 'https://x/y', fileId: 'id',
}

t.test('STS: file types, both spellings, flat and wrapped answers, missing fields', async (t) => {
  t.same(['image/png', 'video/mp4', 'audio/mpeg', 'application/pdf', 'text/plain'].map(stsFileType), ['image', 'video', 'audio', 'file', 'file'])
  t.same(stsBody({ filename: 'a.pdf', size: 3, mime: 'application/pdf' }), { filename: 'a.pdf', filesize: 3, filetype: 'file', file_name: 'a.pdf', file_size: 3, file_type: 'file' })
  const data = { access_key_id: 'STS.a', access_key_secret: 's', security_token: 'CAIS', bucketname: 'b', region: 'r', file_path: '/u/f', file_url: 'https://u', file_id: 'f', endpoint: 'oss-accelerate.aliyuncs.com' }
  t.match(stsGrantOf(data), { accessKeyId: 'STS.a', filePath: 'u/f', endpoint: 'oss-accelerate.aliyuncs.com' }, 'flat (v1); a leading slash dropped')
  t.match(stsGrantOf({ success: true, data }), { accessKeyId: 'STS.a' }, 'wrapped (v2)')
  t.throws(() => stsGrantOf({ ...data, security_token: '' }), /lacks security_token/)
  t.throws(() => stsGrantOf(null), /lacks access_key_id/)
})

t.test('object URL: the addressing decision (PROTOCOL §1.8.2)', async (t) => {
  t.equal(objectUrl(grant), 'https://qwen-webui-prod.oss-ap-southeast-1.aliyuncs.com/user/id_a%20b.png', 'no endpoint: region + aliyuncs.com')
  t.equal(objectUrl({ ...grant, endpoint: 'oss-accelerate.aliyuncs.com' }), 'https://qwen-webui-prod.oss-accelerate.aliyuncs.com/user/id_a%20b.png', 'a bare host')
  t.equal(objectUrl({ ...grant, endpoint: 'https://oss-ap-southeast-1.aliyuncs.com' }), 'https://qwen-webui-prod.oss-ap-southeast-1.aliyuncs.com/user/id_a%20b.png', 'an aliyuncs URL: virtual host')
  t.equal(objectUrl({ ...grant, endpoint: 'http://127.0.0.1:9000/store/' }), 'http://127.0.0.1:9000/store/qwen-webui-prod/user/id_a%20b.png', 'any other URL: path style')
})

t.test('OSS V1 signature: the canonical string and the headers', async (t) => {
  const s = ossStringToSign('PUT', '', 'image/png', 'Thu, 01 Jan 2026 00:00:00 GMT', { 'X-OSS-Security-Token': ' tok ', 'x-oss-meta-b': '2', other: 'no' }, '/b/k')
  t.equal(s, 'PUT\n\nimage/png\nThu, 01 Jan 2026 00:00:00 GMT\nx-oss-meta-b:2\nx-oss-security-token:tok\n/b/k')
  // RFC 2202 test case 2 for HMAC-SHA1, in base64.
  t.equal(ossSignature('Jefe', 'what do ya want for nothing?'), '7/zfauXrL6LSdBbV8YTfnCWafHk=')
  const h = putHeaders(grant, 'image/png', 10, Date.UTC(2026, 0, 1))
  t.equal(h.date, 'Thu, 01 Jan 2026 00:00:00 GMT')
  t.equal(h['content-length'], '10')
  t.equal(h.authorization, `OSS STS.ak:${ossSignature('secret', `PUT\n\nimage/png\n${h.date}\nx-oss-security-token:CAIStoken\n/qwen-webui-prod/user/id_a b.png`)}`)
  t.match(putFailure(403, '<Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message></Error>').message, /SignatureDoesNotMatch: bad/)
  t.match(putFailure(500, 'oops').message, /HTTP 500/)
  t.match(putFailure(400, '<Error><Code>X</Code></Error>').message, /\(X\)/)
})

t.test('file objects and parse status answers', async (t) => {
  const img = fileObject(grant, { filename: 'a.png', size: 5, mime: 'image/png', kind: 'image' }, 1000, { userId: 'u' })
  t.match(img, { type: 'image', file_class: 'vision', showType: 'image', url: 'https://x/y', id: 'id', size: 5, file: { user_id: 'u', meta: { content_type: 'image/png' } } })
  t.notOk('context' in img)
  t.match(fileObject(grant, { filename: 'v.mp4', size: 5, mime: 'video/mp4', kind: 'video' }, 1000), { type: 'video', file_class: 'video', file: { user_id: '' } })
  t.match(fileObject(grant, { filename: 'a.mp3', size: 5, mime: 'audio/mpeg', kind: 'audio' }, 1000), { type: 'audio', file_class: 'audio' })
  const doc = fileObject(grant, { filename: 'd.pdf', size: 5, mime: 'application/pdf', kind: 'file' }, 1000, { parsed: true })
  t.match(doc, { type: 'file', file_class: 'document', context: 'full', file: { meta: { parse_meta: { parse_status: 'success' } } } })
  t.equal(parseStatusOf({ data: [{ file_id: 'a', status: 'running' }, { file_id: 'b', status: 'success' }] }, 'b'), 'success')
  t.equal(parseStatusOf({ data: { data: [{ id: 'b', status: 'failed' }] } }, 'b'), 'failed', 'wrapped twice, `id`')
  t.equal(parseStatusOf({ data: [null, { file_id: 'b' }] }, 'b'), undefined)
  t.equal(parseStatusOf(undefined, 'b'), undefined)
})

t.test('upload cache: TTL, entry and byte bounds, copies, disabled at 0', async (t) => {
  let now = 0
  const c = new MemoryUploadCache({ ttlMs: 100, maxEntries: 2, maxBytes: 60, now: () => now })
  c.set('a', { v: 1 })
  const got = c.get('a')!
  got.v = 2
  t.same(c.get('a'), { v: 1 }, 'callers get copies')
  now = 100
  t.equal(c.get('a'), undefined, 'expired')
  t.equal(c.size, 0)
  c.set('a', { v: 1 })
  c.set('b', { v: 2 })
  c.set('c', { v: 3 })
  t.equal(c.get('a'), undefined, 'the oldest goes beyond maxEntries')
  t.same([c.get('b'), c.get('c')], [{ v: 2 }, { v: 3 }])
  c.set('b', { v: 'x'.repeat(50) })
  t.equal(c.get('c'), undefined, 'beyond maxBytes the oldest go too')
  t.ok(c.get('b'))
  c.set('huge', { v: 'x'.repeat(100) })
  t.equal(c.get('huge'), undefined, 'an entry larger than the cache is not kept')
  const off = new MemoryUploadCache({ ttlMs: 0, now: () => 0 })
  off.set('a', { v: 1 })
  t.equal(off.get('a'), undefined)
})

t.test('uploader: identity keys and upload names', async (t) => {
  const lease = (identityId: string | undefined, cred: { token?: string; cookie?: string }) => ({ identityId, cred }) as unknown as CredentialLease
  t.equal(identityKey(lease('abc', { token: 't' })), 'id:abc')
  const k1 = identityKey(lease(undefined, { token: 't1', cookie: 'c' }))
  t.equal(k1, identityKey(lease(undefined, { token: 't2', cookie: 'c' })), 'client mode: the cookie decides, not the token')
  t.not(k1, identityKey(lease(undefined, { token: 't1' })))
  t.match(identityKey(lease(undefined, {})), /^client:[0-9a-f]{32}$/)
  t.notMatch(k1, /\bc\b/, 'no secret in the key')
  t.equal(uploadName({ filename: '../../etc/pass wd.png', mime: 'image/png' }), 'pass_wd.png')
  t.equal(uploadName({ filename: '...', mime: 'image/png' }), 'file.png')
  t.equal(uploadName({ filename: '', mime: 'application/octet-stream' }), 'file.octetstream')
  t.equal(uploadName({ filename: 'x'.repeat(300) + '.png', mime: 'image/png' }).length, 100)
})

t.test('png: sizes read back; bad sizes refused', async (t) => {
  t.same(pngSize(encodePng(16, 9)), { width: 16, height: 9 })
  t.equal(pngSize(Buffer.from('not a png at all, really not')), undefined)
  t.throws(() => encodePng(0, 1), RangeError)
})
