package mimecast_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mimecast-ure/mimecast"
	"mimecast-ure/plugin"
)

// A grade sync: every user's SAFE score, 500 a call, with Mimecast's
// refusals turned into plugin error codes.
func Example() {
	c, err := mimecast.NewFromSettings(plugin.MimecastSettings{
		BaseURL: "https://us-api.mimecast.com", Auth: plugin.AuthLegacy,
		AppID: "app-id", AppKey: "app-key", AccessKey: "access-key", SecretKey: "c2VjcmV0",
		PageSize: 500, Timeout: plugin.Duration(30 * time.Second),
	}, mimecast.Options{})
	if err != nil {
		fmt.Println(plugin.ErrorMessage(err))
		return
	}
	var users []plugin.UserGrade
	err = c.EachGradePage(context.Background(), 0, func(page []plugin.UserGrade) error {
		users = append(users, page...)
		return nil
	})
	var ae *mimecast.APIError
	switch {
	case errors.As(err, &ae) && ae.Kind == mimecast.KindRateLimited:
		fmt.Println("try again in", ae.Wait)
	case err != nil:
		fmt.Println(plugin.ErrorCode(err), plugin.ErrorMessage(err))
	default:
		fmt.Println(len(users), "users")
	}
}

// The range-over-func form of the same pull.
func ExampleClient_GradePages() {
	c, _ := mimecast.New(mimecast.Options{BaseURL: "https://api.services.mimecast.com", Auth: plugin.AuthOAuth2,
		ClientID: "id", ClientSecret: "secret"})
	for page, err := range c.GradePages(context.Background(), 500) {
		if err != nil {
			fmt.Println(plugin.ErrorMessage(err))
			break
		}
		fmt.Println(len(page), "users")
	}
}
