// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// TimerManager.h (Engine module), with FTimerHandle (Engine/TimerHandle.h).

#pragma once

#include "CoreMinimal.h"
#include "UObject/Object.h"

struct FTimerHandle
{
	FTimerHandle();
	bool IsValid() const;
};

class FTimerManager
{
public:
	// The engine's FTimerDelegate::TMethodPtr<UserClass>: a non-const member taking nothing, returning void.
	template <class UserClass>
	void SetTimer(FTimerHandle& InOutHandle, UserClass* InObj, std::type_identity_t<void (UserClass::*)()> InTimerMethod,
		float InRate, bool InbLoop = false, float InFirstDelay = -1.f);

	void ClearTimer(FTimerHandle& InHandle);
};
