import CompassHandlers
import CompassHosts

Runtime.run(RefreshCronHandler.self)
