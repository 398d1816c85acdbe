// Stand-ins for the Unreal Engine API used by AffettoComponent, for a compile check only; signatures follow UE 5.x
// (5.3/5.4). Never put these headers in a game: they declare, they do not implement.
//
// OSCMessage.h (OSC plugin).

#pragma once

#include "CoreMinimal.h"
#include "OSCAddress.h"

struct FOSCMessage
{
	FOSCMessage();
	~FOSCMessage();

	bool SetAddress(const FOSCAddress& InAddress);
	const FOSCAddress& GetAddress() const;
};
