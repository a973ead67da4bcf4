import CompassPlatform

extension Config {
    /// The store that `STORE_URL` names, with the etcd credentials and CA file configured.
    package func openStore() throws(StoreError) -> any KeyValueStore {
        switch store {
        case .files(let root):
            return try FileStore(root: root)
        case .etcd(let endpoints, let namespace):
            let credentials = etcdUser.flatMap { user in etcdPassword.map { (user: user, password: $0) } }
            return EtcdStore(endpoints: endpoints, namespace: namespace, transport: CurlTransport(caFile: etcdCAFile),
                             credentials: credentials)
        }
    }
}
