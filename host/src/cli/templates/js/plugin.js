// `{{name}}`: a wirehook plugin. wirehook calls `handle` once per event of
// each route that names this plugin; see wit/plugin.wit for every type.

import { log } from 'wirehook:plugin/host@0.2.0';

export function handle(e) {
  if (e.payload.tag === 'message-received') {
    log('info', `message from ${e.payload.val.contact.phone}`);
  }
  // On a `respond` route this reply is the HTTP response. To fail the
  // event instead, throw { tag: 'retry', val: 'why' }.
  return { status: 200, json: JSON.stringify({ kind: e.kind, plugin: '{{name}}' }) };
}
