// The shared behaviour suite (test/shared/behaviour.ts) over every transport and peer. To add a
// transport, build a BehaviourTransport from the adapters in test/shared/transports.ts and add
// one line here.
import { runBehaviourSuite } from '../shared/behaviour.js';
import {
  switchyardClientToWs,
  switchyardOverTcp,
  switchyardOverTls,
  withDeflate,
  wsClientToSwitchyard,
} from '../shared/transports.js';
import { switchyardOverHttp2, switchyardOverHttp2Tls } from '../shared/http2-transport.js';

runBehaviourSuite('Switchyard client ↔ Switchyard server over TCP', switchyardOverTcp);
runBehaviourSuite('Switchyard client ↔ Switchyard server over TLS', switchyardOverTls);
runBehaviourSuite('ws client ↔ Switchyard server', wsClientToSwitchyard);
runBehaviourSuite('Switchyard client ↔ ws server', switchyardClientToWs);
runBehaviourSuite(
  'Switchyard client ↔ Switchyard server over HTTP/2 (RFC 8441)',
  switchyardOverHttp2,
);
runBehaviourSuite(
  'Switchyard client ↔ Switchyard server over HTTP/2 with TLS (RFC 8441)',
  switchyardOverHttp2Tls,
);

// The same behaviours with permessage-deflate (RFC 7692) negotiated.
runBehaviourSuite(
  'Switchyard ↔ Switchyard over TCP, permessage-deflate',
  withDeflate(switchyardOverTcp),
);
runBehaviourSuite(
  'ws client ↔ Switchyard server, permessage-deflate',
  withDeflate(wsClientToSwitchyard),
);
runBehaviourSuite(
  'Switchyard client ↔ ws server, permessage-deflate',
  withDeflate(switchyardClientToWs),
);
runBehaviourSuite(
  'Switchyard client ↔ Switchyard server over HTTP/2, permessage-deflate',
  withDeflate(switchyardOverHttp2),
);
runBehaviourSuite(
  'Switchyard client ↔ Switchyard server over HTTP/2 with TLS, permessage-deflate',
  withDeflate(switchyardOverHttp2Tls),
);
