package order

import (
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/types"
	"github.com/kqstack/kqstack/app/order/model"
)

func orderView(o *model.Order) types.Order {
	return types.Order{OrderNo: o.OrderNo, UserID: o.UserID, Amount: o.Amount, State: string(o.State),
		CloseAt: o.CloseAt, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}
