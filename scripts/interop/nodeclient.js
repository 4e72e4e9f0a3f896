// The interop matrix's Node.js client: node nodeclient.js CASES.json
// For each case: tls.connect trusting only the case's CA file, the host
// name checked (servername), the request sent, the reply read to the end;
// twice, offering the first session, where the case asks. JSON out.
'use strict';
const fs = require('fs');
const tls = require('tls');

function once(c, session) {
  return new Promise((resolve) => {
    let data = '';
    let latest = null;
    let done = false;
    const finish = (error) => {
      if (done) return;
      done = true;
      resolve({ error, data, session: latest, resumed: socket.isSessionReused(),
                version: socket.getProtocol() });
    };
    const options = {
      host: c.host, port: c.port, servername: c.serverName,
      ca: fs.readFileSync(c.caFile), session: session || undefined,
    };
    if (c.maxVersion === '1.2') options.maxVersion = 'TLSv1.2';
    const socket = tls.connect(options, () => socket.write(c.request));
    socket.setTimeout(c.timeout * 1000, () => { finish('timed out'); socket.destroy(); });
    socket.on('session', (s) => { latest = s; });
    socket.on('data', (chunk) => { data += chunk.toString('utf8'); });
    socket.on('error', (e) => finish(e.message.split('\n')[0]));
    socket.on('close', () => finish(null));
  });
}

async function run(c) {
  const result = { id: c.id, accepted: false, error: null, reply: '', version: null, resumed: null };
  let session = null;
  for (let i = 0; i < (c.twice ? 2 : 1); i++) {
    const r = await once(c, session);
    if (r.error) { result.error = r.error; return result; }
    session = r.session;
    Object.assign(result, { reply: r.data.slice(-200), resumed: r.resumed, version: r.version });
  }
  result.accepted = true;
  return result;
}

(async () => {
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = [];
  for (const c of cases) results.push(await run(c));
  process.stdout.write(JSON.stringify({ version: process.version, openssl: process.versions.openssl,
                                        results }));
})();
