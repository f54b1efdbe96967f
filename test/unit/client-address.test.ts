import t from 'tap';
import { clientAddressKey } from '../../src/http/client-address.ts';

t.test('IPv4 addresses count as themselves', async (t) => {
  t.equal(clientAddressKey('192.0.2.7'), '192.0.2.7');
  t.equal(clientAddressKey('10.0.0.1'), '10.0.0.1');
});

t.test('IPv6 addresses count by their /64, however they are written', async (t) => {
  const sameBlock = [
    '2001:db8:1:2::1',
    '2001:db8:1:2:ffff:ffff:ffff:ffff',
    '2001:0db8:0001:0002:0000:0000:0000:0001',
    '2001:DB8:1:2:a:b:c:d',
    '2001:db8:1:2::192.0.2.1',
    '2001:db8:1:2::9%eth0',
  ];
  for (const address of sameBlock) t.equal(clientAddressKey(address), '2001:db8:1:2::/64', address);
  t.equal(clientAddressKey('2001:db8:1:3::1'), '2001:db8:1:3::/64', 'the next /64 is another client');
  t.equal(clientAddressKey('::1'), '::/64');
  t.equal(clientAddressKey('::'), '::/64');
  t.equal(clientAddressKey('fe80::1:2:3:4'), 'fe80::/64');
  t.equal(clientAddressKey('1:2:3:4:5:6:7::'), '1:2:3:4::/64');
  t.equal(clientAddressKey('1::8'), '1::/64');
});

t.test('an IPv4-mapped IPv6 address counts as its IPv4 address', async (t) => {
  t.equal(clientAddressKey('::ffff:192.0.2.7'), '192.0.2.7');
  t.equal(clientAddressKey('::FFFF:c000:0207'), '192.0.2.7', 'written in hex');
  t.equal(clientAddressKey('0:0:0:0:0:ffff:10.1.2.3'), '10.1.2.3');
  t.not(clientAddressKey('::fffe:192.0.2.7'), '192.0.2.7', 'not a mapped address');
});

t.test("an IPv4 client's address behind NAT64 or Teredo counts that client alone", async (t) => {
  t.equal(clientAddressKey('64:ff9b::192.0.2.7'), '192.0.2.7', 'NAT64 (RFC 6052 well-known prefix)');
  t.equal(clientAddressKey('64:ff9b::c000:207'), '192.0.2.7', 'written in hex');
  t.not(clientAddressKey('64:ff9b::198.51.100.1'), clientAddressKey('64:ff9b::192.0.2.7'), 'two IPv4 clients, two keys');
  t.equal(clientAddressKey('64:ff9b::1:c000:207'), '64:ff9b::/64', 'outside the /96: an ordinary /64');
  // The local-use prefix (RFC 8215): the translator's own prefix (/48 to /96) holds the IPv4 address where its length puts it.
  t.equal(clientAddressKey('64:ff9b:1:ab::c000:207'), '64:ff9b:1:ab::c000:207', 'a /96 from the local-use prefix: the full address');
  t.equal(clientAddressKey('64:FF9B:1:AB:0:0:192.0.2.7'), '64:ff9b:1:ab::c000:207', 'written otherwise, the same key');
  t.not(clientAddressKey('64:ff9b:1:ab::c633:6401'), clientAddressKey('64:ff9b:1:ab::c000:207'), 'two IPv4 clients of one /96, two keys');
  t.not(
    clientAddressKey('64:ff9b:1:c000:2:700::'),
    clientAddressKey('64:ff9b:1:c633:64:100::'),
    'two IPv4 clients of a /48 (RFC 6052 §2.2), two keys',
  );
  t.equal(clientAddressKey('64:ff9b:2::c000:207'), '64:ff9b:2::/64', 'past the /48: an ordinary /64');
  // RFC 4380's example: Teredo server 65.54.227.120, client 192.0.2.45 behind a NAT, port 40000 (obfuscated).
  const teredo = '2001:0:4136:e378:8000:63bf:3fff:fdd2';
  t.equal(clientAddressKey(teredo), '192.0.2.45', "Teredo: the client's IPv4 address");
  t.equal(clientAddressKey('2001:0:c000:201:0:1234:3fff:fdd2'), '192.0.2.45', 'the same client, another server, flags and port');
  t.not(clientAddressKey('2001:0:4136:e378:8000:63bf:3fff:fdd3'), clientAddressKey(teredo), 'another client of the same server');
  t.equal(clientAddressKey('2001:1::1'), '2001:1::/64', 'not Teredo');
  t.equal(clientAddressKey('2001:db8::1'), '2001:db8::/64', 'other 2001: prefixes count by their /64');
});

t.test('random IPv6 addresses: the key is the first four groups, whatever the rest', async (t) => {
  const hex = (groups: number[]) => groups.map((group) => group.toString(16)).join(':');
  // The /64 written canonically (RFC 5952) by another implementation: the WHATWG URL parser's.
  const canonical64 = (groups: number[]) => `${new URL(`http://[${hex(groups.slice(0, 4))}::]`).hostname.slice(1, -1)}/64`;
  for (let i = 0; i < 200; i++) {
    const groups = Array.from({ length: 8 }, () => (Math.random() < 0.3 ? 0 : Math.floor(Math.random() * 0x10000)));
    const translated = (groups[0] === 0x64 && groups[1] === 0xff9b) || (groups[0] === 0x2001 && groups[1] === 0);
    if (groups.slice(0, 5).every((group) => group === 0) || translated) continue;
    const full = hex(groups);
    const otherTail = hex([...groups.slice(0, 4), ...groups.slice(4).map((group) => group ^ 0x5a5a)]);
    t.equal(clientAddressKey(full), canonical64(groups), full);
    t.equal(clientAddressKey(otherTail), clientAddressKey(full), 'same /64, same key');
  }
});
