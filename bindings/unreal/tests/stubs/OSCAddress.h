// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// OSCAddress.h (OSC plugin: Engine/Plugins/Runtime/OSC/Source/OSC/Public).

#pragma once

#include "CoreMinimal.h"

struct FOSCAddress
{
	FOSCAddress();
	FOSCAddress(const FString& InValue);

	FString GetFullPath() const;
};
