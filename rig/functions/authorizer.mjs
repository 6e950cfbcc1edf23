// The rig's Lambda REQUEST authorizer: it allows a request whose first identity source
// (the tests use the Authorization header) is "allow:<user>" and refuses any other, and
// gives the integration the user's name in its context. It answers a payload 2.0 event
// with a simple response ({isAuthorized, context}) unless the request's
// x-rig-authorizer-response header says "iam"; payload 1.0 always with an IAM policy on
// the route ({principalId, policyDocument, context}), as API Gateway expects.
export async function handler(event) {
  const sources = Array.isArray(event.identitySource)
    ? event.identitySource
    : String(event.identitySource ?? '').split(',')
  const token = sources[0] ?? ''
  const user = token.startsWith('allow:') ? token.slice('allow:'.length) : null
  const context = { user: user ?? 'nobody', payload: event.version }
  const wantsPolicy = (event.headers ?? {})['x-rig-authorizer-response'] === 'iam'
  if (event.version === '2.0' && !wantsPolicy) {
    return { isAuthorized: user !== null, context }
  }
  return {
    principalId: user ?? 'nobody',
    policyDocument: {
      Version: '2012-10-17',
      Statement: [{
        Action: 'execute-api:Invoke',
        Effect: user !== null ? 'Allow' : 'Deny',
        Resource: event.routeArn ?? event.methodArn
      }]
    },
    context
  }
}
