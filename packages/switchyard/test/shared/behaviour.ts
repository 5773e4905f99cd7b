/**
 * The shared behaviour suite: one set of WebSocket behaviours, run over every transport and
 * peer (test/interop/behaviour.test.ts), so that Switchyard behaves the same whichever way it is
 * reached and whoever is on the other end.
 *
 * Each case starts its own server (options differ between cases), connects one client, and
 * stops both in `t.after`. Every wait is event-driven and bounded (see `BehaviourPeer.until`),
 * so one transport's run takes well under a few seconds. The cases assert only what RFC 6455
 * requires of both ends, never one implementation's quirks; where a peer's API differs (ws has
 * no wasClean on its Node 'close' event, say) the adapter in ./transports.ts bridges it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import { skipUnlessAvailable } from '../helpers/peers.js';
import type {
  BehaviourClientOptions,
  BehaviourPeer,
  BehaviourServerOptions,
  BehaviourTransport,
  PeerClose,
} from './transports.js';

export type {
  BehaviourClientOptions,
  BehaviourPeer,
  BehaviourServer,
  BehaviourServerOptions,
  BehaviourTransport,
  PeerClose,
} from './transports.js';

/** Text that exercises every UTF-8 sequence length: 2-, 3- and 4-byte (with a modifier). */
export const MULTILINGUAL = 'Grüße, 世界! Привет, мир. مرحبا 👋🏽 ';

/**
 * The payload lengths where the frame header changes (RFC 6455 §5.2: 7-bit length up to 125,
 * 16-bit from 126 to 65,535, 64-bit from 65,536), plus empty and 1 MiB.
 */
export const BINARY_SIZES = [0, 125, 126, 65_535, 65_536, 1024 * 1024] as const;

/** A connected client and the server's end of the same connection. */
interface Connected {
  client: BehaviourPeer;
  server: BehaviourPeer;
}

/**
 * Starts a server of `transport` whose connections run `behaviour`, connects a client to it,
 * and registers cleanup of both.
 */
async function open(
  t: TestContext,
  transport: BehaviourTransport,
  options: {
    server?: BehaviourServerOptions;
    client?: BehaviourClientOptions;
    behaviour?: (server: BehaviourPeer) => void;
  } = {},
): Promise<Connected> {
  const server = await transport.startServer(options.server ?? {});
  t.after(() => server.close());
  const serverPeer = new Promise<BehaviourPeer>((resolve) => {
    server.onConnection((peer) => {
      options.behaviour?.(peer);
      resolve(peer);
    });
  });
  const client = await transport.connectClient(server.url, options.client ?? {});
  t.after(() => client.terminate());
  return { client, server: await serverPeer };
}

/**
 * Checks how the side that failed the connection saw its end. It sent a Close frame with `code`
 * (its peer's view proves that), but what it reports itself depends on whether it reads the
 * reply: RFC 6455 §7.1.7 says it "MUST NOT continue to attempt to process data (including a
 * responding Close frame)", and without a Close frame received the code "is considered to be
 * 1006" (§7.1.5). ws follows that to the letter; Switchyard reports the failure's own code.
 * Either way the close was not clean.
 */
function assertFailedWith(saw: PeerClose, code: number): void {
  assert.ok(saw.code === code || saw.code === 1006, `closed with ${saw.code}, not ${code} or 1006`);
  assert.equal(saw.wasClean, false);
}

/**
 * `size` bytes that deflate well. Under permessage-deflate a message is held to maxPayload both
 * on the wire and once inflated, and random bytes grow a little when deflated: a random message
 * of exactly maxPayload bytes is refused on the wire by every implementation. Compressible bytes
 * keep the limit where the test puts it, and make the oversized message a small frame that only
 * inflating reveals (the decompression-bomb path, RFC 7692 §8.1).
 */
function compressible(size: number): Buffer {
  return Buffer.alloc(size, 'switchyard ');
}

/** Echoes every message back as it came (text as text, binary as binary). */
function echo(peer: BehaviourPeer): void {
  peer.onMessage((data) => peer.send(data));
}

/**
 * Registers the behaviour suite for one transport, as a `describe` block named after it.
 * Cases skip (or, under SWITCHYARD_REQUIRE_PEERS=1, fail) when the transport is unavailable.
 *
 * @example
 * runBehaviourSuite('Switchyard client ↔ Switchyard server over TCP', switchyardOverTcp);
 */
export function runBehaviourSuite(transportName: string, transport: BehaviourTransport): void {
  /** A case that first checks the transport can run here. */
  const behaviour = (name: string, fn: (t: TestContext) => Promise<void>) =>
    test(name, async (t) => {
      if (transport.availability !== undefined) {
        if (!skipUnlessAvailable(t, await transport.availability())) return;
      }
      await fn(t);
    });

  describe(transportName, () => {
    behaviour('echoes ASCII and multilingual UTF-8 text, empty text included', async (t) => {
      const { client, server } = await open(t, transport, { behaviour: echo });
      const texts = ['hello', MULTILINGUAL, '', MULTILINGUAL.repeat(2000)];

      for (const text of texts) client.send(text);
      await client.until('4 echoes', () => client.messages.length === texts.length);

      assert.deepEqual(server.messages, texts);
      assert.deepEqual(client.messages, texts);
    });

    behaviour('echoes binary of 0, 125, 126, 65535, 65536 bytes and 1 MiB', async (t) => {
      const { client, server } = await open(t, transport, { behaviour: echo });
      const payloads = BINARY_SIZES.map((size) => randomBytes(size));

      for (const payload of payloads) client.send(payload);
      await client.until('every echo', () => client.messages.length === payloads.length);

      assert.deepEqual(server.messages, payloads);
      assert.deepEqual(client.messages, payloads);
    });

    behaviour('a message sent in fragments arrives whole, in both directions', async (t) => {
      const textParts = ['Grü', 'ße, ', '世界', '', '👋🏽'];
      const binaryParts = [randomBytes(10), randomBytes(0), randomBytes(70_000)];
      const { client, server } = await open(t, transport, {
        behaviour: (peer) =>
          peer.onMessage((data) => {
            if (data !== 'fragments, please') return;
            peer.sendFragments(textParts);
            peer.sendFragments(binaryParts);
          }),
      });

      client.sendFragments(textParts);
      client.sendFragments(binaryParts);
      client.send('fragments, please');
      await client.until('2 messages', () => client.messages.length === 2);

      const whole = [textParts.join(''), Buffer.concat(binaryParts)];
      assert.deepEqual(server.messages, [...whole, 'fragments, please']);
      assert.deepEqual(client.messages, whole);
    });

    behaviour('a ping gets a pong with the same payload, in both directions', async (t) => {
      const { client, server } = await open(t, transport);
      const fromClient = Buffer.from('ping from the client ✓');
      // RFC 6455 §5.5: a control frame's payload is at most 125 bytes; use all of them.
      const fromServer = randomBytes(125);

      client.ping(fromClient);
      server.ping(fromServer);
      await client.until('a pong', () => client.pongs.length === 1);
      await server.until('a pong', () => server.pongs.length === 1);

      // RFC 6455 §5.5.3: the pong carries the "Application data" of the ping it answers.
      assert.deepEqual(client.pongs, [fromClient]);
      assert.deepEqual(server.pings, [fromClient]);
      assert.deepEqual(server.pongs, [fromServer]);
      assert.deepEqual(client.pings, [fromServer]);
      assert.deepEqual(client.messages, []);
    });

    behaviour('a close from the client: both sides see its code and reason, cleanly', async (t) => {
      const { client, server } = await open(t, transport);

      client.close(4000, 'bye ✓');
      const [clientSaw, serverSaw] = await Promise.all([client.closed(), server.closed()]);

      // RFC 6455 §7.1.5: the close code is the one in the first Close frame received; the
      // server echoes the client's (§5.5.1), so both report 4000 and the reason.
      assert.deepEqual(serverSaw, { code: 4000, reason: 'bye ✓', wasClean: true });
      assert.equal(clientSaw.code, 4000);
      assert.equal(clientSaw.wasClean, true);
      assert.deepEqual(client.errors, []);
      assert.deepEqual(server.errors, []);
    });

    behaviour('a close from the server: both sides see its code and reason, cleanly', async (t) => {
      const { client, server } = await open(t, transport);

      server.close(4001, 'server says bye');
      const [clientSaw, serverSaw] = await Promise.all([client.closed(), server.closed()]);

      assert.deepEqual(clientSaw, { code: 4001, reason: 'server says bye', wasClean: true });
      assert.equal(serverSaw.code, 4001);
      assert.equal(serverSaw.wasClean, true);
      assert.deepEqual(client.errors, []);
      assert.deepEqual(server.errors, []);
    });

    behaviour('a close without a code is reported as 1005 by the peer', async (t) => {
      const { client, server } = await open(t, transport);

      client.close();
      const [clientSaw, serverSaw] = await Promise.all([client.closed(), server.closed()]);

      // RFC 6455 §7.1.5: "If this Close control frame contains no status code, _The WebSocket
      // Connection Close Code_ is considered to be 1005."
      assert.deepEqual(serverSaw, { code: 1005, reason: '', wasClean: true });
      assert.deepEqual(clientSaw, { code: 1005, reason: '', wasClean: true });
    });

    behaviour('both ends agree on the negotiated extensions', async (t) => {
      const { client, server } = await open(t, transport);

      assert.equal(client.extensions, server.extensions);
      assert.match(client.extensions, transport.extensions ?? /^$/);
    });

    behaviour("negotiates the server's preferred subprotocol among those offered", async (t) => {
      const { client, server } = await open(t, transport, {
        server: { protocols: ['chat.v2', 'chat.v1'] },
        client: { protocols: ['chat.v1', 'unknown', 'chat.v2'] },
      });

      assert.equal(client.protocol, 'chat.v2');
      assert.equal(server.protocol, 'chat.v2');
    });

    behaviour('opens without a subprotocol when none offered is served', async (t) => {
      const options = { server: { protocols: ['chat.v2'] }, client: { protocols: ['chat.v9'] } };
      if (transport.clientRefusesAbsentSubprotocol === true) {
        await assert.rejects(open(t, transport, options), 'the client refuses the 101');
        return;
      }
      const { client, server } = await open(t, transport, options);

      // RFC 6455 §4.2.2: the server omits the header; the client then has no subprotocol.
      assert.equal(client.protocol, '');
      assert.equal(server.protocol, '');
    });

    behaviour("a message larger than the server's maxPayload closes with 1009", async (t) => {
      const { client, server } = await open(t, transport, {
        server: { maxPayload: 1024 },
        behaviour: echo,
      });

      client.send(compressible(1024));
      await client.until('the echo of 1024 bytes', () => client.messages.length === 1);
      client.send(compressible(1025));
      const [clientSaw, serverSaw] = await Promise.all([client.closed(), server.closed()]);

      // RFC 6455 §7.4.1: 1009, "a message that is too big for it to process".
      assert.equal(clientSaw.code, 1009);
      assertFailedWith(serverSaw, 1009);
      assert.equal(server.errors.length, 1, 'the server reports the oversized message');
      assert.equal(server.messages.length, 1, 'the oversized message is not delivered');
    });

    behaviour("a message larger than the client's maxPayload closes with 1009", async (t) => {
      const { client, server } = await open(t, transport, {
        client: { maxPayload: 1024 },
        behaviour: (peer) => {
          peer.send(compressible(1024));
          peer.send(compressible(1025));
        },
      });

      const [clientSaw, serverSaw] = await Promise.all([client.closed(), server.closed()]);

      assert.equal(serverSaw.code, 1009);
      assertFailedWith(clientSaw, 1009);
      assert.equal(client.errors.length, 1, 'the client reports the oversized message');
      assert.equal(client.messages.length, 1, 'the oversized message is not delivered');
    });

    behaviour('1,000 messages arrive in the order sent, in both directions', async (t) => {
      const { client, server } = await open(t, transport, { behaviour: echo });
      const sent = Array.from({ length: 1000 }, (_, i) =>
        i % 2 === 0 ? `message #${i}` : Buffer.from(`binary #${i}`),
      );

      for (const message of sent) client.send(message);
      await client.until('1,000 echoes', () => client.messages.length === sent.length);

      assert.deepEqual(server.messages, sent);
      assert.deepEqual(client.messages, sent);
    });
  });
}
