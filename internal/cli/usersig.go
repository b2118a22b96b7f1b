package cli

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"timd/internal/usersig"
)

// defaultExpire is the SDKs' default UserSig lifetime: 180 days.
const defaultExpire = 180 * 24 * 3600

// genUserSig prints a UserSig v2.
func genUserSig(env Env, args []string) error {
	fs := flag.NewFlagSet("usersig", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	sdkappid := fs.Uint64("sdkappid", 0, "SDKAppID")
	key := fs.String("key", "", "the app's secret key")
	identifier := fs.String("identifier", "", "UserID the sig is for")
	expire := fs.Int64("expire", defaultExpire, "validity in seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sdkappid == 0 || *key == "" || *identifier == "" {
		return errors.New("--sdkappid, --key and --identifier are required")
	}
	if *expire <= 0 {
		return errors.New("--expire must be positive")
	}
	sig, err := usersig.Gen(*sdkappid, *key, *identifier, *expire, time.Now().Unix())
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, sig)
	return nil
}
