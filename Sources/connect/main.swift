import Compass

CGIHost.run(.connect)
