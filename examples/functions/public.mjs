// The seed's public route: anyone may call it.
export async function handler() {
  return {
    statusCode: 200,
    body: "Hello stranger!",
  };
}
