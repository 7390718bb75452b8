// `http-js`: a test fixture. A JavaScript plugin whose engine imports
// wasi:http/types (which wirehook links only as refusals): on the input
// text `fetch` it calls the engine's own `fetch`, which builds a wasi:http
// request; otherwise it answers with the input.

export function handle(e) {
  const input = e.payload.tag === 'flow-call'
    ? e.payload.val.variables.find(([key]) => key === 'input')?.[1]
    : undefined;
  if (input === 'fetch') {
    let outcome = 'pending';
    fetch('http://127.0.0.1:9/', { method: 'POST', headers: { 'x-probe': '1' }, body: 'x' })
      .then(() => { outcome = 'answered'; }, (error) => { outcome = `refused: ${error}`; });
    return { status: 200, json: JSON.stringify({ fetch: outcome }) };
  }
  return { status: 200, json: JSON.stringify({ input: input ?? null }) };
}
