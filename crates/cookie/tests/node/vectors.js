// Prints signing vectors from the real npm packages, one JSON object per line, for
// crates/cookie/tests/node_vectors.rs to compare with sessionbank-cookie.
//
//   node vectors.js
'use strict';
const signature = require('cookie-signature');
const Keygrip = require('keygrip');

const ids = [
  'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  'x3Jk9_-Qa2ZzTt0pLmN8vWbC4dEfGhIj',
  'q-_9zZyYxXwWvVuUtTsSrRqQpPoOnNmM',
];
const secrets = [['keyboard cat'], ['new secret', 'old secret'], ['s'.repeat(64)]];

for (const id of ids) {
  for (const keys of secrets) {
    // express-session: 's:' + cookie-signature sign(id, secrets[0]), then encodeURIComponent.
    const signed = 's:' + signature.sign(id, keys[0]);
    const byOldest = 's:' + signature.sign(id, keys[keys.length - 1]);
    console.log(JSON.stringify({
      format: 'express', keys, id,
      value: encodeURIComponent(signed),
      value_oldest_key: encodeURIComponent(byOldest),
    }));
    for (const algorithm of ['sha1', 'sha256']) {
      // keygrip / cookies: name.sig = keys.sign(name + '=' + value).
      const grip = new Keygrip(keys, algorithm);
      const name = 'koa.sid';
      const data = name + '=' + id;
      const oldest = new Keygrip([keys[keys.length - 1]], algorithm).sign(data);
      console.log(JSON.stringify({
        format: 'keygrip', algorithm, keys, id, name,
        sig: grip.sign(data),
        sig_oldest_key: oldest,
        index_of_oldest: grip.index(data, oldest),
      }));
    }
  }
}
