// The rig's integration that shows what API Gateway told it about the caller: its answer's
// body is the event's requestContext.authorizer, as JSON.
export async function handler(event) {
  return {
    statusCode: 200,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(event.requestContext?.authorizer ?? null)
  }
}
