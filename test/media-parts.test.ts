/** Reading media parts, the prompt markers, which parts are attached, and decoding their bytes. */
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { InvalidRequestError } from '../src/errors.js'
import { attachmentOf, decodeBase64 } from '../src/media/decode.js'
import { cleanFilename, mediaPartText, readMediaPart, type MediaPart } from '../src/media/parts.js'
import { MAX_ATTACHMENTS, MAX_IMAGES, attachedParts } from '../src/media/resolve.js'
import { contentText, foldMessages, prepareChat, type ChatMessage, type ChatRequest } from '../src/openai/request.js'
import { JPEG, MP3_ID3, MP4, PDF, PNG, TEXT, WAV, WEBM, dataUrl } from './helpers/media-fixtures.js'

const img = (url: string) => ({ type: 'image_url', image_url: { url } })
const PNG_URL = dataUrl('image/png', PNG)

function refused (t: Test, fn: () => unknown, param: string, code: string, message?: RegExp): void {
  try {
    fn()
    t.fail(`expected ${param} to be refused`)
  } catch (err) {
    t.type(err, InvalidRequestError)
    const e = err as InvalidRequestError
    t.same([e.statusCode, e.param, e.code], [400, param, code], e.message)
    if (message) t.match(e.message, message)
  }
}

t.test('part shapes: what is read, what is refused (with the part as param)', async (t) => {
  const at = 'messages[2].content[1]'
  t.same(readMediaPart(img(PNG_URL), at), { part: 'image_url', param: at, source: { inline: PNG_URL } })
  t.same(readMediaPart(img(' https://cdn.example/a.png '), at).source, { url: 'https://cdn.example/a.png' })
  t.same(readMediaPart({ type: 'image_url', image_url: 'HTTP://cdn.example/b.png' }, at).source, { url: 'HTTP://cdn.example/b.png' }, 'a bare string is accepted too')
  t.same(readMediaPart({ type: 'video_url', video_url: { url: 'https://v.example/a.mp4' } }, at), { part: 'video_url', param: at, source: { url: 'https://v.example/a.mp4' } })
  t.same(readMediaPart({ type: 'input_audio', input_audio: { data: 'QUJD', format: 'mp3' } }, at), { part: 'input_audio', param: at, source: { inline: 'QUJD' }, format: 'mp3' })
  t.same(readMediaPart({ type: 'file', file: { file_data: 'QUJD', filename: 'a.pdf' } }, at), { part: 'file', param: at, source: { inline: 'QUJD' }, filename: 'a.pdf' })
  t.same(readMediaPart({ type: 'file', file: { file_data: 'QUJD', filename: ' ' } }, at), { part: 'file', param: at, source: { inline: 'QUJD' } })

  refused(t, () => readMediaPart(img('file:///etc/passwd'), at), at, 'invalid_image_url', /scheme `file:` are not fetched/)
  refused(t, () => readMediaPart(img('gopher://x:70/_'), at), at, 'invalid_image_url', /`gopher:`/)
  refused(t, () => readMediaPart(img('/relative.png'), at), at, 'invalid_image_url', /data: URL with base64 or an http\(s\) URL/)
  refused(t, () => readMediaPart(img(''), at), at, 'invalid_image_url', /non-empty string/)
  refused(t, () => readMediaPart({ type: 'image_url' }, at), at, 'invalid_image_url')
  refused(t, () => readMediaPart({ type: 'video_url', video_url: { url: 'ftp://x/y.mp4' } }, at), at, 'invalid_file')
  refused(t, () => readMediaPart({ type: 'input_audio', input_audio: { format: 'wav' } }, at), at, 'invalid_file', /input_audio.data/)
  refused(t, () => readMediaPart({ type: 'input_audio', input_audio: { data: 'QUJD', format: 'flac' } }, at), at, 'invalid_file', /`wav` or `mp3`, not `flac`/)
  refused(t, () => readMediaPart({ type: 'file', file: { file_id: 'file-123' } }, at), at, 'invalid_file', /`file_id` is not supported: this gateway has no Files API/)
  refused(t, () => readMediaPart({ type: 'file', file: {} }, at), at, 'invalid_file', /file_data/)
  refused(t, () => readMediaPart({ type: 'file', file: 'x' }, at), at, 'invalid_file', /must be an object/)
})

t.test('media parts leave markers in the prompt text; text parts stay', async (t) => {
  t.equal(contentText([
    { type: 'text', text: 'What is in these?' },
    img(PNG_URL),
    { type: 'input_audio', input_audio: { data: 'QUJD', format: 'wav' } },
    { type: 'video_url', video_url: { url: 'https://v.example/a.mp4' } },
    { type: 'file', file: { file_data: 'QUJD', filename: '../../etc/report "q1".pdf' } },
    { type: 'file', file: { file_data: 'QUJD' } },
  ], 'messages[0].content'), 'What is in these?\n[image]\n[audio]\n[video]\n[file report q1.pdf]\n[file]')
  t.equal(mediaPartText(img('https://a.example/x.png'), 'p'), '[image]')
  t.equal(foldMessages([
    { role: 'user', content: [{ type: 'text', text: 'Look' }, img(PNG_URL)] },
    { role: 'assistant', content: 'A dot.' },
    { role: 'user', content: 'And now?' },
  ] as ChatMessage[]), '[User]\nLook\n[image]\n\n[Assistant]\nA dot.\n\n[User]\nAnd now?')
  const chat = prepareChat({ model: 'm', messages: [{ role: 'user', content: [img(PNG_URL)] }] } as ChatRequest)
  t.equal(chat.prompt, '[image]', 'an image-only message is a valid request')
  t.same(chat.attachments, [], 'attachments are resolved later, by the route')
  refused(t, () => prepareChat({ model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'f' } }] }] } as ChatRequest), 'messages[0].content[0]', 'invalid_file')
})

t.test('file names are made safe', async (t) => {
  t.equal(cleanFilename('C:\\Users\\me\\photo.png'), 'photo.png')
  t.equal(cleanFilename('a\u0000b<c>.txt'), 'abc.txt')
  t.equal(cleanFilename('x'.repeat(150) + '.pdf').length, 100)
})

const user = (...content: unknown[]) => ({ role: 'user', content }) as ChatMessage

t.test('the most recent images are attached, older ones only as text; other kinds always', async (t) => {
  const history: ChatMessage[] = []
  for (let i = 0; i < MAX_IMAGES + 2; i++) {
    history.push(user({ type: 'text', text: `picture ${i}` }, img(`https://img.example/${i}.png`)))
    history.push({ role: 'assistant', content: 'ok' } as ChatMessage)
  }
  history.splice(1, 0, user({ type: 'file', file: { file_data: 'QUJD', filename: 'old.pdf' } }))
  const parts = attachedParts(history)
  t.equal(parts.length, MAX_IMAGES + 1)
  t.same(parts[0]!.filename, 'old.pdf', 'an old document is still attached')
  t.same(parts.slice(1).map((p) => (p.source as { url: string }).url), Array.from({ length: MAX_IMAGES }, (_, i) => `https://img.example/${i + 2}.png`))
  t.same(attachedParts([{ role: 'user', content: 'text only' } as ChatMessage]), [])

  const crowded = user(...Array.from({ length: MAX_IMAGES + 1 }, (_, i) => img(`https://img.example/${i}.png`)))
  refused(t, () => attachedParts([crowded]), `messages[0].content[${MAX_IMAGES}]`, 'invalid_image_url', /at most 8 images/)
  const files = Array.from({ length: MAX_ATTACHMENTS + 1 }, () => ({ type: 'input_audio', input_audio: { data: 'QUJD', format: 'wav' } }))
  refused(t, () => attachedParts([user(...files)]), 'messages', 'invalid_file', /at most 16/)
})

const part = (over: Partial<MediaPart> = {}): MediaPart => ({ part: 'image_url', param: 'messages[0].content[0]', source: { inline: '' }, ...over })

t.test('base64: strict decoding, size checked before decoding, empty refused', async (t) => {
  t.same(decodeBase64(part(), PNG_URL, 1024), PNG)
  t.same(decodeBase64(part(), `DATA:image/jpeg;BASE64,${PNG.toString('base64')}`, 1024), PNG, 'case-insensitive prefix; the declared type does not matter')
  t.same(decodeBase64(part(), PNG.toString('base64').replace(/=+$/, ''), 1024), PNG, 'padding optional')
  t.same(decodeBase64(part(), PNG.toString('base64').replace(/(.{20})/g, '$1\n'), 1024), PNG, 'line breaks tolerated')
  t.same(decodeBase64(part(), Buffer.from([0xfb, 0xff]).toString('base64url'), 1024), Buffer.from([0xfb, 0xff]), 'URL-safe alphabet')
  const p = 'messages[0].content[0]'
  refused(t, () => decodeBase64(part(), 'data:image/png;base64,iVBOR*w0KGgo=', 1024), p, 'invalid_image_url', /not valid base64/)
  refused(t, () => decodeBase64(part(), 'QUJD=QUJD', 1024), p, 'invalid_image_url', /not valid base64/)
  refused(t, () => decodeBase64(part(), 'QUJDR', 1024), p, 'invalid_image_url', /not valid base64/)
  refused(t, () => decodeBase64(part(), 'data:image/png,rawbytes', 1024), p, 'invalid_image_url', /must be base64-encoded/)
  refused(t, () => decodeBase64(part(), 'data:image/png;base64', 1024), p, 'invalid_image_url', /must be base64-encoded/)
  refused(t, () => decodeBase64(part(), 'data:image/png;base64,', 1024), p, 'invalid_image_url', /empty/)
  refused(t, () => decodeBase64(part({ part: 'file' }), Buffer.alloc(2000).toString('base64'), 1024), p, 'invalid_file', /2000 bytes, larger than the limit of 1024 bytes \(UPLOAD_MAX_BYTES\)/)
  t.equal(decodeBase64(part(), Buffer.alloc(1024, 1).toString('base64'), 1024).length, 1024, 'exactly the cap is fine')
})

t.test('attachments: the sniffed type, the kind, a safe name, and the hash', async (t) => {
  const a = attachmentOf(part(), PNG)
  t.same([a.kind, a.mime, a.param, a.bytes], ['image', 'image/png', 'messages[0].content[0]', PNG])
  t.match(a.filename, /^image-[0-9a-f]{12}\.png$/)
  t.equal(a.sha256, createHash('sha256').update(PNG).digest('hex'))
  t.equal(attachmentOf(part(), JPEG).mime, 'image/jpeg')
  const doc = attachmentOf(part({ part: 'file', filename: 'Q3 report.pdf' }), PDF)
  t.same([doc.kind, doc.mime, doc.filename], ['file', 'application/pdf', 'Q3 report.pdf'])
  t.equal(attachmentOf(part({ part: 'file', filename: 'scan.pdf' }), PNG).filename, 'scan.png', 'the extension follows the bytes')
  t.equal(attachmentOf(part({ part: 'file', filename: 'notes.md' }), TEXT).filename, 'notes.md', 'text files keep their extension')
  t.equal(attachmentOf(part({ part: 'file', filename: 'README' }), TEXT).filename, 'README.txt')
  t.equal(attachmentOf(part({ part: 'file' }), MP4).kind, 'video', 'a file part may carry any accepted type')
  t.equal(attachmentOf(part({ part: 'input_audio', format: 'wav' }), WAV).kind, 'audio')
  t.equal(attachmentOf(part({ part: 'input_audio', format: 'mp3' }), MP3_ID3).mime, 'audio/mpeg')
  t.equal(attachmentOf(part({ part: 'video_url' }), WEBM).mime, 'video/webm')

  const p = 'messages[0].content[0]'
  refused(t, () => attachmentOf(part(), PDF), p, 'invalid_image_url', /the bytes are application\/pdf, which `image_url` does not take/)
  refused(t, () => attachmentOf(part(), Buffer.from([1, 2, 3, 0])), p, 'invalid_image_url', /not a supported file type \(accepted here: image\/png/)
  refused(t, () => attachmentOf(part({ part: 'input_audio', format: 'mp3' }), WAV), p, 'invalid_file', /format` is `mp3` but the bytes are audio\/wav/)
  refused(t, () => attachmentOf(part({ part: 'video_url' }), PNG), p, 'invalid_file', /image\/png/)
  refused(t, () => attachmentOf(part(), Buffer.alloc(0)), p, 'invalid_image_url', /empty/)
})
