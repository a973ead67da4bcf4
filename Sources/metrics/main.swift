import CompassHandlers
import CompassHosts

Runtime.run(MetricsHandler.self)
