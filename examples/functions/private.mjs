// The seed's private route: only users logged in with Auth0 reach it.
export async function handler() {
  return {
    statusCode: 200,
    body: "Hello user!",
  };
}
