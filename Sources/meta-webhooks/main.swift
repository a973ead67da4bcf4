import CompassHandlers
import CompassHosts

Runtime.run(MetaWebhooksHandler.self)
