import t from 'tap'
import { ACCEPTED, KIND_OF, acceptedText, sniff } from '../src/media/sniff.js'
import { BMP, GIF, JPEG, M4A, MKV, MP3_FRAME, MP3_ID3, MP4, PDF, PNG, TEXT, WAV, WEBM, WEBP } from './helpers/media-fixtures.js'

t.test('types come from the bytes', async (t) => {
  const table: Array<[string, Buffer, string | undefined]> = [
    ['png', PNG, 'image/png'],
    ['jpeg', JPEG, 'image/jpeg'],
    ['gif', GIF, 'image/gif'],
    ['webp', WEBP, 'image/webp'],
    ['bmp', BMP, 'image/bmp'],
    ['mp4', MP4, 'video/mp4'],
    ['webm', WEBM, 'video/webm'],
    ['mp3 with ID3', MP3_ID3, 'audio/mpeg'],
    ['mp3 frame', MP3_FRAME, 'audio/mpeg'],
    ['wav', WAV, 'audio/wav'],
    ['pdf', PDF, 'application/pdf'],
    ['utf-8 text', TEXT, 'text/plain'],
    ['m4a (audio-only mp4)', M4A, undefined],
    ['matroska', MKV, undefined],
    ['text with NUL', Buffer.from('abc\0def'), undefined],
    ['invalid utf-8', Buffer.from([0x61, 0xc3, 0x28]), undefined],
    ['empty', Buffer.alloc(0), undefined],
    ['random binary', Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04]), undefined],
    ['ADTS AAC (layer bits 00)', Buffer.from([0xff, 0xf1, 0x50, 0x80, 0, 0]), undefined],
    ['MPEG frame with a bad bitrate', Buffer.from([0xff, 0xfb, 0xf0, 0x64]), undefined],
    ['MPEG frame with a reserved version', Buffer.from([0xff, 0xeb, 0x90, 0x64]), undefined],
    ['"BM" text is text, not a bitmap', Buffer.from('BM is a plain sentence, long enough to look at.'), 'text/plain'],
    ['GIF signature only', Buffer.from('GIF89a'), 'image/gif'],
    ['RIFF that is neither', Buffer.from('RIFF\0\0\0\0AVI LIST'), undefined],
    ['truncated png', PNG.subarray(0, 4), undefined],
  ]
  for (const [name, bytes, mime] of table) t.equal(sniff(bytes), mime, name)
})

t.test('declared types are ignored: a PNG named .pdf is a PNG', async (t) => {
  t.equal(sniff(Buffer.from(PNG)), 'image/png')
})

t.test('which part accepts which type, and the kind of each type', async (t) => {
  t.same(ACCEPTED.image_url, ['image/png', 'image/jpeg', 'image/webp', 'image/gif', 'image/bmp'])
  t.same(ACCEPTED.input_audio, ['audio/mpeg', 'audio/wav'])
  t.same(ACCEPTED.video_url, ['video/mp4', 'video/webm'])
  t.ok(ACCEPTED.file.includes('application/pdf') && ACCEPTED.file.includes('text/plain'))
  t.equal(KIND_OF['application/pdf'], 'file')
  t.equal(KIND_OF['video/webm'], 'video')
  t.equal(acceptedText('input_audio'), 'audio/mpeg, audio/wav')
})
