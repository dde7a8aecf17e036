// What the AWS WebSocket chat samples do at init: load the DynamoDB and API Gateway Management clients and build
// them once. Then it serves the Lambda Runtime API loop, so natter-local can time process start to the first `next`.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";

const ddb = new DynamoDBClient({});
const mgmt = new ApiGatewayManagementApiClient({ endpoint: process.env.MANAGEMENT_ENDPOINT ?? "http://127.0.0.1:9" });
const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime`;

for (;;) {
  const next = await fetch(`${api}/invocation/next`);
  const id = next.headers.get("lambda-runtime-aws-request-id");
  await next.text();
  const body = JSON.stringify({ statusCode: 200, clients: [typeof ddb.send, typeof mgmt.send] });
  await fetch(`${api}/invocation/${id}/response`, { method: "POST", body });
}
