import t from 'tap'
import { addressAllowed, forbiddenReason, hostAllowed, parseAllowList, parseIp } from '../src/media/address.js'

t.test('IPv4 and IPv6 addresses: forbidden ranges and public ones', async (t) => {
  const table: Array<[string, string | undefined]> = [
    ['0.0.0.0', 'unspecified'],
    ['10.1.2.3', 'private'],
    ['100.64.0.1', 'CGNAT'],
    ['100.127.255.255', 'CGNAT'],
    ['100.128.0.1', undefined],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', undefined],
    ['192.168.1.1', 'private'],
    ['192.0.2.7', 'documentation'],
    ['198.18.0.1', 'reserved'],
    ['224.0.0.251', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['8.8.8.8', undefined],
    ['1.1.1.1', undefined],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['fc00::1', 'private (ULA)'],
    ['fd12:3456::1', 'private (ULA)'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved (Teredo)'],
    ['192.88.99.1', 'reserved (6to4 relay anycast)'],
    ['100::1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:7f00:1', 'loopback (IPv4 inside IPv6)'],
    ['::ffff:10.0.0.1', 'private (IPv4 inside IPv6)'],
    ['::ffff:169.254.169.254', 'link-local (IPv4 inside IPv6)'],
    ['::ffff:8.8.8.8', undefined],
    ['::127.0.0.1', 'loopback (IPv4 inside IPv6)'],
    ['64:ff9b::a9fe:a9fe', 'link-local (IPv4 inside IPv6)'],
    ['64:ff9b::8.8.8.8', undefined],
    ['2002:a00:1::', 'private (IPv4 inside IPv6)'],
    ['2002:808:808::', undefined],
    ['2606:4700:4700::1111', undefined],
    ['2a00:1450:4001:80b::200e', undefined],
    ['1:2:3:4:5:6:7:8', undefined],
    ['example.com', 'not an IP address'],
    ['300.1.1.1', 'not an IP address'],
  ]
  for (const [ip, why] of table) t.equal(forbiddenReason(ip), why, ip)
})

t.test('IPv6 text forms parse to the same bytes', async (t) => {
  t.same(parseIp('::ffff:127.0.0.1'), parseIp('::ffff:7f00:1'))
  t.same(parseIp('::1'), [...new Array(15).fill(0), 1])
  t.same(parseIp('1::'), [0, 1, ...new Array(14).fill(0)])
  t.same(parseIp('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8])
  t.equal(parseIp('nope'), undefined)
})

t.test('allow list: hosts, wildcard subdomains, addresses and CIDRs', async (t) => {
  const a = parseAllowList(' images.corp.example , *.cdn.example,127.0.0.1, 10.20.0.0/16, fd00::/8 ,[::1],')
  t.same(a.hosts, ['images.corp.example', '*.cdn.example'])
  t.ok(hostAllowed('IMAGES.corp.example.', a))
  t.ok(hostAllowed('a.b.cdn.example', a))
  t.notOk(hostAllowed('cdn.example', a), 'the wildcard covers subdomains only')
  t.notOk(hostAllowed('evil.example', a))
  t.ok(addressAllowed('127.0.0.1', a))
  t.notOk(addressAllowed('127.0.0.2', a), 'a single address is a /32')
  t.ok(addressAllowed('10.20.255.1', a))
  t.notOk(addressAllowed('10.21.0.1', a))
  t.ok(addressAllowed('fd99::1', a))
  t.ok(addressAllowed('::1', a))
  t.notOk(addressAllowed('fe80::1', a))
  t.notOk(addressAllowed('not-an-ip', a))
  t.same(parseAllowList(['localhost']).hosts, ['localhost'], 'a list is accepted too')
  t.same(parseAllowList(''), { hosts: [], cidrs: [] })
  t.throws(() => parseAllowList('10.0.0.0/33'), /invalid prefix length/)
  t.throws(() => parseAllowList('10.0.0.0/x'), /invalid prefix length/)
  t.throws(() => parseAllowList('host/8'), /neither a host name/)
  t.throws(() => parseAllowList('http://x'), /neither a host name/)
})
