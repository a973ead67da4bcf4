import Compass

CGIHost.run(.graphSandbox)
