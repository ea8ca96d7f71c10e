"""Local development only: the embedded Kafka broker (fetched from Maven Central) and the
process runner behind `streamapp run`. Production never imports this package."""
