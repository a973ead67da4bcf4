import CompassHandlers
import CompassHosts

Runtime.run(DisconnectHandler.self)
