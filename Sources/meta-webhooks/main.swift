import Compass

CGIHost.run(.metaWebhooks)
