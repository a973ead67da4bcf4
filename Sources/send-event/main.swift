import Compass

CGIHost.run(.sendEvent)
