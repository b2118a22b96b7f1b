package main
import (
 _ "github.com/RoaringBitmap/roaring/v2"
 _ "modernc.org/sqlite"
 _ "github.com/coder/websocket"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/jackc/pgx/v5"
 _ "github.com/nats-io/nats.go"
 _ "github.com/tencentyun/tls-sig-api-v2-golang/tencentyun"
)
func main(){}
