// Apollo Gateway on Apollo Server, as the benchmark runs it. Configured by
// the runner through the environment:
//   SUPERGRAPH   path of the composed supergraph
//   PORT         port to listen on (127.0.0.1)
//   PROPAGATE_AUTHORIZATION=1  forward the client's authorization header
// Apollo Gateway has no in-flight de-duplication of subgraph requests.
import { readFileSync } from "node:fs";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";

const supergraphSdl = readFileSync(process.env.SUPERGRAPH, "utf8");
const port = Number(process.env.PORT ?? 4200);
const propagate = process.env.PROPAGATE_AUTHORIZATION === "1";

class Subgraph extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (propagate && context.authorization) {
      request.http.headers.set("authorization", context.authorization);
    }
  }
}

const gateway = new ApolloGateway({ supergraphSdl, buildService: ({ url }) => new Subgraph({ url }) });
const server = new ApolloServer({ gateway, introspection: false });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port },
  context: async ({ req }) => ({ authorization: req.headers.authorization }),
});
console.log(`Apollo Gateway ready at ${url}`);
