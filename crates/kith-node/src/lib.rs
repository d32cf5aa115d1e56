//! kith-node
