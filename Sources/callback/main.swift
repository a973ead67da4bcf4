import Compass

CGIHost.run(.callback)
