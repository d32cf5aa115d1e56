//! kith-net
