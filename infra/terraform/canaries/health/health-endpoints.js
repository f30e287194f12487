'use strict';
// CloudWatch Synthetics canary: one public endpoint per service answers 2xx through the ALB.
// The ALB does not route /livez and /readyz (they are for its own target health checks), so each
// service is probed on a public path it serves. One step per service, so the step metrics say which.
//
// Environment (set by Terraform): BASE_URL=https://<public hostname>,
// PATHS=vault=/.well-known/jwks.json,room-service=/socket.io/?EIO=4&transport=polling,...

let synthetics = null;
let log = console;
try {
  synthetics = require('Synthetics'); // eslint-disable-line import/no-unresolved
  log = require('SyntheticsLogger'); // eslint-disable-line import/no-unresolved
} catch (_) {
  synthetics = null;
}

function targets() {
  return (process.env.PATHS || '')
    .split(',')
    .filter(Boolean)
    .map((entry) => {
      const i = entry.indexOf('=');
      return { service: entry.slice(0, i), path: entry.slice(i + 1) };
    });
}

async function check(baseUrl, target) {
  const started = Date.now();
  const res = await fetch(`${baseUrl}${target.path}`, {
    redirect: 'manual',
    headers: { 'user-agent': 'casino-synthetics-health' },
    signal: AbortSignal.timeout(Number(process.env.REQUEST_TIMEOUT_MS || 5000)),
  });
  if (res.status < 200 || res.status > 299) {
    throw new Error(`${target.service} ${target.path} answered ${res.status}`);
  }
  await res.arrayBuffer();
  log.info(`${target.service} ${target.path} ${res.status} in ${Date.now() - started} ms`);
}

async function healthEndpoints() {
  const baseUrl = (process.env.BASE_URL || '').replace(/\/+$/, '');
  if (!baseUrl) throw new Error('BASE_URL is not set');
  const list = targets();
  if (list.length === 0) throw new Error('PATHS is empty');
  const failures = [];
  for (const target of list) {
    const run = () => check(baseUrl, target);
    try {
      if (synthetics) await synthetics.executeStep(target.service, run);
      else await run();
    } catch (err) {
      failures.push(err.message);
    }
  }
  if (failures.length > 0) throw new Error(failures.join('; '));
}

exports.healthEndpoints = healthEndpoints;
exports.handler = async () => healthEndpoints();
