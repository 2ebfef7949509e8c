/**
 * The `require` export of token-sparse-attention. The package is ESM only: where Node can
 * require() an ES module (Node >= 20.19 / 22.12) this returns the ES entry itself; elsewhere it
 * says how to load it instead of Node's generic ERR_REQUIRE_ESM.
 */
'use strict';
try {
  module.exports = require('./dist/harness/index.js');
} catch (e) {
  if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
    throw new Error(
      "token-sparse-attention is an ES module: load it with import (import { selectBackend } from 'token-sparse-attention') " +
        "or, from CommonJS, with await import('token-sparse-attention'); require() of ES modules needs Node >= 20.19 or >= 22.12",
      { cause: e },
    );
  }
  throw e;
}
