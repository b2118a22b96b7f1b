package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"timd/internal/usersig"
)

// defaultExpire is the SDKs' default UserSig lifetime: 180 days.
const defaultExpire = 180 * 24 * 3600

// genUserSig prints a UserSig v2.
func genUserSig(_ context.Context, env Env, args []string) error {
	fs := newFlags("usersig")
	sdkappid := fs.Uint64("sdkappid", 0, "SDKAppID")
	key := fs.String("key", "", "the app's secret key")
	identifier := fs.String("identifier", "", "UserID the sig is for")
	expire := fs.Int64("expire", defaultExpire, "validity in seconds")
	if err := parseFlags(env, fs, args); err != nil {
		return err
	}
	if *sdkappid == 0 || *key == "" || *identifier == "" {
		return errUsage{errors.New("--sdkappid, --key and --identifier are required")}
	}
	if *expire <= 0 {
		return errUsage{errors.New("--expire must be positive")}
	}
	sig, err := usersig.Gen(*sdkappid, *key, *identifier, *expire, time.Now().Unix())
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, sig)
	return nil
}
