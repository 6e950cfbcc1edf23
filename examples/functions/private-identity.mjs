// The seed's "Making changes" step: the private route greets the caller by their Cognito
// identity id, which API Gateway passes in the event.
export const handler = async (event) => {
  return {
    statusCode: 200,
    body: `Hello ${event.requestContext.authorizer.iam.cognitoIdentity.identityId}!`,
  };
};
