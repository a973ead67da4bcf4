import CompassHandlers
import CompassHosts

Runtime.run(ConnectHandler.self)
