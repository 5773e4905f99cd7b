// The shared behaviour suite (test/shared/behaviour.ts) over every transport and peer. To add a
// transport, build a BehaviourTransport from the adapters in test/shared/transports.ts and add
// one line here.
import { runBehaviourSuite } from '../shared/behaviour.js';
import {
  switchyardClientToWs,
  switchyardOverTcp,
  switchyardOverTls,
  wsClientToSwitchyard,
} from '../shared/transports.js';

runBehaviourSuite('Switchyard client ↔ Switchyard server over TCP', switchyardOverTcp);
runBehaviourSuite('Switchyard client ↔ Switchyard server over TLS', switchyardOverTls);
runBehaviourSuite('ws client ↔ Switchyard server', wsClientToSwitchyard);
runBehaviourSuite('Switchyard client ↔ ws server', switchyardClientToWs);
