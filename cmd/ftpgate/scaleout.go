package main

// scaleConfig configures running several replicas behind a TCP load
// balancer.
type scaleConfig struct{}
