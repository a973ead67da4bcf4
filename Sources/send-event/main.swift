import CompassHandlers
import CompassHosts

Runtime.run(SendEventHandler.self)
