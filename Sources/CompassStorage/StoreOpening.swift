import CompassPlatform

extension StoreSettings {
    /// The store that `STORE_URL` names, with the etcd credentials and CA file configured;
    /// `ConfigError` when no store is named where one must be.
    package func open() throws -> any KeyValueStore {
        switch location {
        case .unset:
            throw ConfigError(
                variable: "STORE_URL", problem: "is not set (a host runs the functions in a folder of its choosing: name the store)")
        case .files(let root):
            return try FileStore(root: root)
        case .etcd(let endpoints, let namespace):
            let credentials = etcdUser.flatMap { user in etcdPassword.map { (user: user, password: $0) } }
            return EtcdStore(
                endpoints: endpoints, namespace: namespace, transport: CurlTransport(caFile: etcdCAFile),
                credentials: credentials)
        case .postgres(let url, let schema):
            return PostgresStore(url: url, schema: schema)
        case .dynamodb(let table, let region, let endpoint):
            let transport = CurlTransport()
            let client = DynamoDBClient(
                endpoint: DynamoDBClient.endpoint(region: region, override: endpoint), region: region,
                credentials: AWSCredentialsProvider(environment: awsEnvironment, transport: transport, clock: SystemClock()),
                transport: transport, clock: SystemClock())
            return DynamoDBStore(table: table, client: client)
        }
    }
}
