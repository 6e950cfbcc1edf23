// Runs one Lambda invocation of a Node.js handler, as the Lambda runtime does:
//   node node.mjs CODE_DIR HANDLER   (event on stdin, as JSON)
// HANDLER is "file.export" (file.mjs, file.js or file.cjs in CODE_DIR). The handler may be
// async, return a promise, or take a callback. The result is written to stdout as one
// JSON line after the marker line: {"result": ...} or {"error": {errorType, errorMessage}}.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [codeDir, handler] = process.argv.slice(2)
const marker = '\u0000authedapi-rig-result\u0000'
const [file, exported] = [handler.slice(0, handler.lastIndexOf('.')), handler.slice(handler.lastIndexOf('.') + 1)]
const path = ['.mjs', '.js', '.cjs'].map((ext) => join(codeDir, file + ext)).find(existsSync)

function finish(result) {
  process.stdout.write(`\n${marker}\n${JSON.stringify({ result: result === undefined ? null : result })}\n`)
  process.exit(0)
}
function fail(error) {
  process.stdout.write(`\n${marker}\n${JSON.stringify({ error: { errorType: error?.name ?? 'Error', errorMessage: String(error?.message ?? error) } })}\n`)
  process.exit(0)
}

try {
  if (!path) throw new Error(`Cannot find module '${file}' in the function's code (handler ${handler})`)
  const module = await import(pathToFileURL(path).href)
  const fn = module[exported] ?? module.default?.[exported]
  if (typeof fn !== 'function') throw new Error(`${handler} is undefined or not exported`)
  const event = JSON.parse(readFileSync(0, 'utf8'))
  const context = { awsRequestId: event?.requestContext?.requestId ?? 'rig', functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, getRemainingTimeInMillis: () => 3000 }
  const returned = fn(event, context, (error, result) => (error ? fail(error) : finish(result)))
  if (returned && typeof returned.then === 'function') returned.then(finish, fail)
  else if (fn.length < 3) finish(returned)
} catch (error) {
  fail(error)
}
